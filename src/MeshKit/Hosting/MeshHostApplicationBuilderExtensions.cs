using MeshKit.Hosting;
using MeshKit.Authorization;
using MeshKit.ControlChannel;
using MeshKit.Discovery;
using MeshKit.Identity;
using MeshKit.Server;
using MeshKit.Telemetry;
using MeshKit.Transport;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.ServiceDiscovery;

namespace Microsoft.Extensions.Hosting;

/// <summary>The entry point of MeshKit: <c>builder.AddMesh()</c>.</summary>
public static class MeshHostApplicationBuilderExtensions
{
    /// <summary>
    /// Joins the mesh: obtains a SPIFFE certificate from the control service before the host starts, renews it, adds the
    /// mesh endpoint (<c>Mesh:Endpoint:Port</c>) that requires mesh client certificates, registers the <c>Mesh</c>
    /// authentication scheme, and lets <see cref="MeshHttpClientBuilderExtensions.AddMesh(IHttpClientBuilder)"/> make any
    /// <c>IHttpClientFactory</c> client a mesh client. Settings come from the <c>Mesh</c> configuration section.
    /// Destinations are found in <c>Mesh:Discovery:Static</c>; Consul is an add-on (the MeshKit.Discovery.Consul package,
    /// <c>builder.AddMeshConsulDiscovery()</c> after this call), and a host whose configuration sets
    /// <c>Mesh:Discovery:Consul</c> without it fails to start.
    /// </summary>
    /// <typeparam name="TBuilder">The host builder.</typeparam>
    /// <param name="builder">The host builder.</param>
    /// <param name="configure">Changes to the settings after they are read from configuration.</param>
    /// <returns>The builder.</returns>
    public static TBuilder AddMesh<TBuilder>(this TBuilder builder, Action<MeshKit.MeshOptions>? configure = null)
        where TBuilder : IHostApplicationBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        if (services.Any(d => d.ServiceType == typeof(MeshMarker)))
        {
            return builder;
        }

        services.AddSingleton<MeshMarker>();

        var options = services.AddOptions<MeshKit.MeshOptions>()
            .Bind(builder.Configuration.GetSection(MeshKit.MeshOptions.SectionName))
            .ValidateOnStart();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.PostConfigure(o => o.Service.InstanceId ??= $"{Environment.MachineName}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..6]}".ToLowerInvariant());
        // Test mode (MeshKit.Testing's AddMeshTestMode, code only) takes identities from an in-process CA: then, and only
        // then, the control service's address and trust bundle are not required.
        services.AddSingleton<IValidateOptions<MeshKit.MeshOptions>>(sp =>
            new MeshKit.MeshOptionsValidator(controlServiceRequired: sp.GetService<IServiceProviderIsService>()?.IsService(typeof(InProcessCertificateIssuer)) != true));
        // Time and randomness are injected: every data-plane stage reads these two, so a test can replace them.
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(MeshKit.MeshRandom.Shared);
        services.AddMetrics();
        MeshOpenTelemetry.Add(services);

        // First, before a certificate is asked for: settings of an add-on the app did not add (Mesh:Discovery:Consul without
        // AddMeshConsulDiscovery()), or a mesh endpoint that no server can bind (a generic host), stop the host.
        services.AddHostedService<MeshKit.Hosting.MeshAddOnStartupCheck>();
        services.AddHostedService<MeshEndpointStartupCheck>();

        // Identity and the control channel.
        services.TryAddSingleton<WorkloadIdentitySource>();
        services.TryAddSingleton<MeshMetrics>();
        services.TryAddSingleton<SavedTrustBundle>();
        // Where the control service's replicas are: the configured addresses, unless an add-on replaces the source
        // (Mesh:ControlPlane:ConsulService with AddMeshConsulDiscovery()).
        services.TryAddSingleton<IControlPlaneAddresses, ConfiguredControlPlaneAddresses>();
        services.TryAddSingleton<ControlPlaneClient>();
        // Who issues certificates: the control service, unless test mode registered an in-process CA (before or after this
        // call). In test mode the control-service client is never made, so nothing is written to the state folder.
        services.TryAddSingleton<IWorkloadCertificateIssuer>(sp =>
            (IWorkloadCertificateIssuer?)sp.GetService<InProcessCertificateIssuer>() ?? sp.GetRequiredService<ControlPlaneClient>());
        services.TryAddSingleton<ControlChannelState>();
        services.AddHostedService<CertificateRenewalService>();
        services.AddHostedService<ControlChannelWatcher>();
        services.AddHostedService<CanaryTrafficReporter>();

        // Discovery: MeshKit's providers, also offered to Microsoft.Extensions.ServiceDiscovery for other clients. Static
        // discovery is built in; add-ons (AddMeshConsulDiscovery()) add their IMeshServiceEndpointProviderFactory after it.
        services.AddServiceDiscoveryCore();
        services.TryAddSingleton<StaticEndpointProviderFactory>();
        services.AddSingleton<IMeshServiceEndpointProviderFactory>(sp => sp.GetRequiredService<StaticEndpointProviderFactory>());
        services.AddSingleton<IServiceEndpointProviderFactory>(sp => sp.GetRequiredService<StaticEndpointProviderFactory>());
        services.TryAddSingleton<MeshEndpointRegistry>();

        // Client side.
        // Which hosts are mesh names: one rule for the call path, the endpoint registry and MeshKit's providers.
        services.TryAddSingleton(sp => new MeshDestinationNames(
            sp.GetRequiredService<IOptions<MeshKit.MeshOptions>>(),
            sp.GetRequiredService<IConfiguration>()));
        services.TryAddSingleton(sp => new MeshDestination.Cache(
            sp.GetRequiredService<IOptions<MeshKit.MeshOptions>>().Value.TrustDomain,
            sp.GetRequiredService<MeshDestinationNames>()));
        services.TryAddSingleton<NonMeshHostGate>();
        services.TryAddSingleton<MeshConnectionPools>();

        // Traffic policy: routes, subsets, resilience, endpoint choice.
        // Files that fail to load are found by MeshKit's own watch; the app's configuration sources stay as they are.
        services.TryAddSingleton<MeshKit.Policy.ConfigurationLoadFailures>();
        services.TryAddSingleton<MeshKit.Policy.PolicyWatcher>();
        services.TryAddSingleton<MeshKit.Resilience.ResilienceStages>();
        services.TryAddSingleton(sp => new MeshKit.Balancing.EndpointStateRegistry(sp.GetRequiredService<MeshEndpointRegistry>(), sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<MeshKit.Client.MirrorSender>();
        services.TryAddSingleton<MeshKit.Client.CallPathBuilder>();
        services.AddHostedService<MeshKit.Policy.PolicyStartupCheck>();
        services.TryAddSingleton<PassThroughTransport>();
        services.AddHttpClient();

        // Server side.
        services.TryAddSingleton<MeshEndpointInfo>();
        services.TryAddSingleton<MeshServerTls>();
        services.TryAddSingleton<MeshPublicUrls>();
        services.AddSingleton<IConfigureOptions<KestrelServerOptions>, MeshKestrelSetup>();
        services.AddSingleton<IStartupFilter, MeshPublicUrlsStartupFilter>();
        services.AddSingleton<IStartupFilter, MeshServerStartupFilter>();

        // Health: identity, policy, discovery, drain; readiness on the public port (no mesh certificate needed).
        services.AddHealthChecks()
            .AddCheck<MeshKit.Health.IdentityHealthCheck>("mesh-identity", tags: ["mesh", "ready"])
            .AddCheck<MeshKit.Health.PolicyHealthCheck>("mesh-policy", tags: ["mesh", "ready"])
            .AddCheck<MeshKit.Health.DiscoveryHealthCheck>("mesh-discovery", tags: ["mesh", "ready"])
            .AddCheck<MeshKit.Health.DrainHealthCheck>("mesh-drain", tags: ["mesh", "ready"]);
        // The Mesh scheme is only ever asked for by name (RequireMeshCaller, policies): it must not become the default
        // scheme when it is the only one, or every request (public ones too) would run an authentication handler for
        // nothing. MeshAuthenticationOptionsSetup keeps it out of the defaults in this host's options (no process-wide
        // switch), and apps with a single scheme of their own keep it as default. The core services only: the full
        // AddAuthentication() would pull in DataProtection, which the Mesh scheme never uses.
        services.AddAuthenticationCore();
        services.TryAddTransient<MeshAuthenticationHandler>();
        services.Configure<Microsoft.AspNetCore.Authentication.AuthenticationOptions>(options =>
            options.AddScheme(MeshAuthenticationDefaults.AuthenticationScheme, scheme =>
            {
                scheme.HandlerType = typeof(MeshAuthenticationHandler);
                scheme.DisplayName = "Mesh (SPIFFE mTLS)";
            }));
        services.AddSingleton<IPostConfigureOptions<Microsoft.AspNetCore.Authentication.AuthenticationOptions>, MeshAuthenticationOptionsSetup>();
        services.AddAuthorization();
        services.AddSingleton<IAuthorizationHandler, MeshCallerAuthorizationHandler>();
        services.TryAddSingleton<MeshRateLimits>();
        services.TryAddSingleton<MeshAuthorizer>();
        services.TryAddSingleton<MeshAuthorizationGate>();
        services.AddSingleton<Microsoft.AspNetCore.Routing.MatcherPolicy, MeshAuthorizationMatcherPolicy>();
        return builder;
    }

    private sealed class MeshMarker;
}
