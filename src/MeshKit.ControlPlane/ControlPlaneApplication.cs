using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using MeshKit.ControlPlane.Signing;
using MeshKit.ControlPlane.Storage;
using MeshKit.ControlPlane.Tls;
using MeshKit.ControlPlane.Tokens;
using MeshKit.ControlPlane.Workloads;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace MeshKit.ControlPlane;

/// <summary>Builds the control service: the same code runs from <c>dotnet run</c>, from Aspire and in tests.</summary>
public static partial class ControlPlaneApplication
{
    [LoggerMessage(EventId = 1003, Level = LogLevel.Information, Message = "ControlPlane:AdminToken is not set; the admin token was generated and is in {Path} (readable by its owner only).")]
    private static partial void LogAdminTokenGenerated(ILogger logger, string path);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Information, Message = "Trust domain {TrustDomain}; trust bundle version {BundleVersion} with {RootCount} root(s).")]
    private static partial void LogTrust(ILogger logger, string trustDomain, string bundleVersion, int rootCount);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Warning, Message = "The revocation lists at {Location} have not been read and this replica kept no copy; it issues no certificate until it has read them.")]
    private static partial void LogRevocationsUnread(ILogger logger, string location);

    /// <summary>The address the control service listens on when no <c>--urls</c> is given.</summary>
    public const string DefaultUrl = "https://127.0.0.1:7443";

    /// <summary>Creates the control service's web application.</summary>
    /// <param name="args">Command-line arguments (<c>--urls</c>, <c>--ControlPlane:...</c>).</param>
    /// <param name="configure">Optional changes to the builder before it is built (tests use it to add settings or loggers).</param>
    /// <returns>The application, ready to run.</returns>
    public static WebApplication Create(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        // The defaults (appsettings.json) live next to the application, which as a dotnet tool is far from the working
        // directory; an explicit --contentRoot (or ASPNETCORE_CONTENTROOT) still wins. Relative paths in settings
        // (ControlPlane:DataDirectory) resolve against the working directory, as a command-line user expects.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = args,
            ContentRootPath = HasExplicitContentRoot(args) ? null : AppContext.BaseDirectory,
        });
        configure?.Invoke(builder);

        builder.Services.AddOptions<ControlPlaneOptions>()
            .Bind(builder.Configuration.GetSection(ControlPlaneOptions.SectionName))
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<ControlPlaneOptions>, ControlPlaneOptionsValidator>();
        builder.Services.TryAddSingleton(TimeProvider.System); // tests may bring a fake clock (configure)
        builder.Services.AddSingleton<ControlPlaneDataDirectory>();
        builder.Services.AddSingleton<CertificateAuthority.CertificateAuthority>();
        builder.Services.AddSingleton<ServingCertificate>();
        builder.Services.AddSingleton<JoinTokenRegistry>();
        builder.Services.AddSingleton<AdminCredential>();
        // With ControlPlane:Consul, one admin token (its hash in KV) works on every replica.
        builder.Services.AddHostedService<SharedAdminCredential>();
        builder.Services.AddSingleton<WorkloadRegistry>();
        // With ControlPlane:Consul, every replica lists every workload (each publishes its own in KV).
        builder.Services.AddHostedService<SharedWorkloads>();
        builder.Services.AddSingleton<IdentityRevocations>();
        builder.Services.AddMetrics();
        builder.Services.AddSingleton<ControlPlaneMetrics>();
        builder.Services.AddSingleton<ControlChannel.ControlChannelFeed>();
        builder.Services.AddSingleton<SharedConsul>();
        builder.Services.AddSingleton<Coordination.ReplicaLeadership>();
        builder.Services.AddHostedService(static provider => provider.GetRequiredService<Coordination.ReplicaLeadership>());
        builder.Services.AddSingleton<Policy.CentralPolicy>();
        // Canary analysis: the callers' reports, and the controller that moves canary routes (on the leading replica only).
        builder.Services.AddSingleton<Canary.CanaryTrafficStore>();
        builder.Services.AddSingleton<Canary.SharedCanaryTraffic>();
        builder.Services.AddHostedService(static provider => provider.GetRequiredService<Canary.SharedCanaryTraffic>());
        builder.Services.AddSingleton<Canary.CanaryController>();
        builder.Services.AddHostedService(static provider => provider.GetRequiredService<Canary.CanaryController>());
        // With ControlPlane:Consul, each replica registers itself (ControlPlane:Registration), so workloads find them all.
        builder.Services.AddHostedService<Replicas.ReplicaRegistration>();
        builder.Services.AddSingleton<CertificateAuthority.ReplicaTrust>();
        builder.Services.AddHostedService(static provider => provider.GetRequiredService<CertificateAuthority.ReplicaTrust>());
        builder.Services.AddProblemDetails();

        var urls = ReadUrls(builder.Configuration);

        // The endpoints are bound here rather than through 'urls' so that each one uses a cached certificate context.
        builder.WebHost.UseSetting(WebHostDefaults.ServerUrlsKey, string.Empty);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            foreach (var url in urls)
            {
                Listen(kestrel, url, () => kestrel.ApplicationServices.GetRequiredService<ServingCertificate>());
            }
        });

        var app = builder.Build();

        // Fail at start, not at first request, when the settings or the CA files are wrong.
        _ = app.Services.GetRequiredService<IOptions<ControlPlaneOptions>>().Value;
        var admin = app.Services.GetRequiredService<AdminCredential>();
        var tokens = app.Services.GetRequiredService<JoinTokenRegistry>();
        var ca = app.Services.GetRequiredService<CertificateAuthority.CertificateAuthority>();
        if (admin.TokenFilePath is not null)
        {
            LogAdminTokenGenerated(app.Logger, admin.TokenFilePath);
        }

        LogTrust(app.Logger, ca.TrustDomain, ca.Bundle.Version, ca.Bundle.Roots.Count);

        app.MapGet("/", () => Results.Json(new { service = "meshkit-control-plane", trustDomain = ca.TrustDomain }));
        app.MapGet("/healthz", () => Results.Text("ok"));
        // Everything the control channel carries raises its index, so waiting watches answer at once.
        var feed = app.Services.GetRequiredService<ControlChannel.ControlChannelFeed>();
        ca.BundleChanged += _ => feed.Publish();
        var revocations = app.Services.GetRequiredService<IdentityRevocations>();
        revocations.Changed += feed.Publish;
        if (!revocations.IsKnown || !tokens.IsKnown)
        {
            LogRevocationsUnread(app.Logger, revocations.Location);
        }
        var central = app.Services.GetRequiredService<Policy.CentralPolicy>();
        central.Store.Changed += feed.Publish;
        central.Store.StartAsync(CancellationToken.None).GetAwaiter().GetResult();

        app.MapSignApi();
        ControlChannel.WatchEndpoints.MapControlChannel(app);
        app.MapWorkloadAdminApi();
        Policy.PolicyEndpoints.MapPolicyAdminApi(app);
        Coordination.LeadershipEndpoints.MapLeadershipAdminApi(app);
        Canary.CanaryEndpoints.MapCanaryApi(app);
        return app;
    }

    /// <summary>Gets the HTTPS addresses the application is listening on, once started.</summary>
    /// <param name="app">The started application.</param>
    /// <returns>The addresses, with actual ports.</returns>
    public static IReadOnlyList<Uri> GetAddresses(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var server = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>();
        var addresses = server.Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        return [.. addresses.Select(a => new Uri(a.Replace("://[::]", "://[::1]", StringComparison.Ordinal).Replace("://0.0.0.0", "://127.0.0.1", StringComparison.Ordinal)))];
    }

    private static bool HasExplicitContentRoot(string[] args)
    {
        foreach (var arg in args)
        {
            if (arg.StartsWith("--contentRoot", StringComparison.OrdinalIgnoreCase) || arg.StartsWith("/contentRoot", StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("ASPNETCORE_CONTENTROOT"))
            || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("DOTNET_CONTENTROOT"));
    }

    private static List<Uri> ReadUrls(IConfiguration configuration)
    {
        var configured = configuration[WebHostDefaults.ServerUrlsKey];
        var list = new List<Uri>();
        foreach (var part in (string.IsNullOrWhiteSpace(configured) ? DefaultUrl : configured).Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            // '*' and '+' are Kestrel's "any address"; Uri cannot parse them as hosts.
            var normalized = part.Replace("://*", "://0.0.0.0", StringComparison.Ordinal).Replace("://+", "://0.0.0.0", StringComparison.Ordinal);
            if (!Uri.TryCreate(normalized, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttps)
            {
                throw new InvalidOperationException($"The control service serves HTTPS only; '--urls' entry '{part}' must look like https://127.0.0.1:7443.");
            }

            list.Add(uri);
        }

        return list;
    }

    private static void Listen(KestrelServerOptions kestrel, Uri url, Func<ServingCertificate> serving)
    {
        void Configure(ListenOptions listen)
        {
            listen.Protocols = HttpProtocols.Http1AndHttp2;
            listen.UseHttps(new TlsHandshakeCallbackOptions
            {
                HandshakeTimeout = TimeSpan.FromSeconds(10),
                OnConnection = context => ValueTask.FromResult(new SslServerAuthenticationOptions
                {
                    ServerCertificateContext = serving().GetContext(),
                    EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                    ApplicationProtocols = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11],

                    // A client certificate is asked for but optional: renewals present one, first issuance does not.
                    // The sign endpoint validates it against the trust bundle; the handshake accepts any.
                    ClientCertificateRequired = true,

                    // A resumed TLS session brings back the client's certificate but not the intermediates it sent (a
                    // certificate from another replica's intermediate needs them): full handshakes only.
                    AllowTlsResume = false,
                    RemoteCertificateValidationCallback = (_, _, chain, _) =>
                    {
                        Tls.PresentedIntermediates.Capture(context.Connection.Items, chain);
                        return true;
                    },
                }),
            });
        }

        var port = url.Port;
        if (url.Host is "localhost" && port != 0)
        {
            kestrel.ListenLocalhost(port, Configure);
        }
        else if (url.Host is "localhost")
        {
            kestrel.Listen(IPAddress.Loopback, 0, Configure);
        }
        else if (IPAddress.TryParse(url.Host.Trim('[', ']'), out var ip))
        {
            if (ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any))
            {
                kestrel.ListenAnyIP(port, Configure);
            }
            else
            {
                kestrel.Listen(ip, port, Configure);
            }
        }
        else
        {
            kestrel.ListenAnyIP(port, Configure);
        }
    }
}
