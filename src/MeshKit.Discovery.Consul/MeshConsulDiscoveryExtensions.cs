using MeshKit;
using MeshKit.Consul;
using MeshKit.ControlChannel;
using MeshKit.Discovery;
using MeshKit.Hosting;
using MeshKit.Server;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.ServiceDiscovery;

namespace Microsoft.Extensions.Hosting;

/// <summary>The entry point of MeshKit's Consul add-on: <c>builder.AddMeshConsulDiscovery()</c>, after <c>builder.AddMesh()</c>.</summary>
public static class MeshConsulDiscoveryExtensions
{
    private const string Call = "builder.AddMeshConsulDiscovery()";

    /// <summary>
    /// Adds Consul to the mesh, on when <c>Mesh:Discovery:Consul:Address</c> is set (so one app runs with or without
    /// Consul): mesh destinations, and Microsoft.Extensions.ServiceDiscovery clients, resolve to the passing instances of
    /// their Consul service through blocking queries, and the last known instances are served while Consul is unreachable;
    /// the workload registers its mesh endpoint with a TTL check that follows the host's health checks; and a graceful stop
    /// marks the check critical, deregisters, and waits for the requests in flight before the server closes its
    /// connections. Settings come from the <c>Mesh:Discovery:Consul</c> configuration section
    /// (<see cref="ConsulOptions"/> and <see cref="ConsulRegistrationOptions"/>).
    /// </summary>
    /// <typeparam name="TBuilder">The host builder.</typeparam>
    /// <param name="builder">The host builder, on which <c>AddMesh()</c> has been called.</param>
    /// <returns>The builder.</returns>
    /// <exception cref="InvalidOperationException"><c>AddMesh()</c> has not been called on the builder.</exception>
    public static TBuilder AddMeshConsulDiscovery<TBuilder>(this TBuilder builder)
        where TBuilder : IHostApplicationBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        if (!MeshAddOn.TryAdd(services, ConsulOptions.SectionPath, Call)
            || string.IsNullOrWhiteSpace(builder.Configuration[ConsulOptions.SectionPath + ":Address"]))
        {
            return builder;
        }

        services.AddOptions<ConsulOptions>().BindConfiguration(ConsulOptions.SectionPath);
        services.AddMeshConsul();
        services.AddOptions<ConsulRegistrationOptions>().BindConfiguration(ConsulOptions.SectionPath).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ConsulRegistrationOptions>, ConsulRegistrationOptionsValidator>());

        // After static discovery, which AddMesh() added: the registry asks MeshKit's providers in order.
        services.TryAddSingleton<ConsulEndpointProviderFactory>();
        services.AddSingleton<IMeshServiceEndpointProviderFactory>(sp => sp.GetRequiredService<ConsulEndpointProviderFactory>());
        services.AddSingleton<IServiceEndpointProviderFactory>(sp => sp.GetRequiredService<ConsulEndpointProviderFactory>());

        // Mesh:ControlPlane:ConsulService: the control service's replicas come from Consul too (AddMesh() registered the
        // configured addresses as the source; this replaces it, and AddMesh()'s start-up check knows it was replaced).
        services.Replace(ServiceDescriptor.Singleton<IControlPlaneAddresses>(sp =>
        {
            var controlPlane = sp.GetRequiredService<IOptions<MeshOptions>>().Value.ControlPlane;
            return string.IsNullOrEmpty(controlPlane.ConsulService)
                ? new ConfiguredControlPlaneAddresses(sp.GetRequiredService<IOptions<MeshOptions>>())
                : new ConsulControlPlaneAddresses(
                    sp.GetRequiredService<ConsulServiceWatcher>(),
                    controlPlane.ConsulService,
                    controlPlane.ConfiguredAddresses(),
                    sp.GetRequiredService<Microsoft.Extensions.Logging.ILogger<ConsulControlPlaneAddresses>>());
        }));

        services.TryAddSingleton<InFlightRequests>();
        AddInFrontOfMeshServer(services, ServiceDescriptor.Singleton<IStartupFilter, InFlightRequestsStartupFilter>());
        services.AddHostedService<ConsulSelfRegistration>();
        services.AddSingleton<IPostConfigureOptions<HostOptions>, ShutdownTimeoutSetup>();
        return builder;
    }

    /// <summary>
    /// Puts the in-flight count in front of MeshKit's server middleware, as its first filter: a request counts from the
    /// moment it enters, whether the mesh later answers it (readiness, a refusal) or the app does.
    /// </summary>
    private static void AddInFrontOfMeshServer(IServiceCollection services, ServiceDescriptor filter)
    {
        for (var i = 0; i < services.Count; i++)
        {
            if (services[i].ServiceType == typeof(IStartupFilter) && services[i].ImplementationType == typeof(MeshServerStartupFilter))
            {
                services.Insert(i, filter);
                return;
            }
        }

        services.Add(filter);
    }

    /// <summary>
    /// Makes the host's shutdown timeout cover the drain plus a deregistration and Kestrel's own stop, so the drain is
    /// never cut short by the host.
    /// </summary>
    private sealed class ShutdownTimeoutSetup(IOptions<ConsulRegistrationOptions> registration, IOptions<ConsulOptions> consul) : IPostConfigureOptions<HostOptions>
    {
        public void PostConfigure(string? name, HostOptions options)
        {
            var needed = registration.Value.DrainTimeout + (2 * consul.Value.RequestTimeout) + TimeSpan.FromSeconds(5);
            if (options.ShutdownTimeout != Timeout.InfiniteTimeSpan && options.ShutdownTimeout < needed)
            {
                options.ShutdownTimeout = needed;
            }
        }
    }
}
