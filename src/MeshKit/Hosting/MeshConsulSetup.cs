using MeshKit.Consul;
using MeshKit.Discovery;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.ServiceDiscovery;

namespace MeshKit.Hosting;

/// <summary>
/// Turns Consul on when <c>Mesh:Discovery:Consul:Address</c> is configured: the Consul client and its last-known cache,
/// the Consul endpoint provider (for mesh destinations and for Microsoft.Extensions.ServiceDiscovery clients),
/// self-registration of the mesh endpoint with a TTL check, and the graceful drain on stop.
/// </summary>
internal static class MeshConsulSetup
{
    /// <summary>Adds Consul discovery and registration when the address is set; does nothing otherwise.</summary>
    public static void AddWhenConfigured(IHostApplicationBuilder builder)
    {
        if (string.IsNullOrWhiteSpace(builder.Configuration[ConsulOptions.SectionPath + ":Address"]))
        {
            return;
        }

        var services = builder.Services;
        services.AddOptions<ConsulOptions>().BindConfiguration(ConsulOptions.SectionPath);
        services.AddMeshConsul();
        services.AddOptions<ConsulRegistrationOptions>().BindConfiguration(ConsulOptions.SectionPath).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ConsulRegistrationOptions>, ConsulRegistrationOptionsValidator>());

        services.TryAddSingleton<ConsulEndpointProviderFactory>();
        services.AddSingleton<IMeshServiceEndpointProviderFactory>(sp => sp.GetRequiredService<ConsulEndpointProviderFactory>());
        services.AddSingleton<IServiceEndpointProviderFactory>(sp => sp.GetRequiredService<ConsulEndpointProviderFactory>());

        services.TryAddSingleton<InFlightRequests>();
        services.AddSingleton<IStartupFilter, InFlightRequestsStartupFilter>();
        services.AddHostedService<ConsulSelfRegistration>();
        services.AddSingleton<IPostConfigureOptions<HostOptions>, ShutdownTimeoutSetup>();
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
