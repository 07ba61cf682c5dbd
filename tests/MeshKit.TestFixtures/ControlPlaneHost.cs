using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using MeshKit.ControlPlane;
using MeshKit.Identity;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace MeshKit.Testing;

/// <summary>
/// A real control service on 127.0.0.1 with a dynamic port and real TLS, in this process, with its own data folder.
/// Stop and start it again to test restarts and outages; the data folder (and so the CA) survives.
/// </summary>
public sealed class ControlPlaneHost : IAsyncDisposable
{
    public const string TrustDomain = "test.mesh";
    public const string AdminToken = "admin-token-for-tests-0123456789";

    private readonly TempDirectory? _ownedDirectory;
    private readonly Dictionary<string, string?> _settings;
    private WebApplication? _app;
    private int _port;

    private ControlPlaneHost(string dataDirectory, TempDirectory? owned, Dictionary<string, string?> settings)
    {
        DataDirectory = dataDirectory;
        _ownedDirectory = owned;
        _settings = settings;
    }

    /// <summary>Gets the data folder (CA, admin token, revocations).</summary>
    public string DataDirectory { get; }

    /// <summary>Gets the base address, for example https://127.0.0.1:41234/.</summary>
    public Uri BaseAddress { get; private set; } = null!;

    /// <summary>Gets the log lines the control service wrote, for assertions on refusals and on secrets never being logged.</summary>
    public TestLogSink Logs { get; } = new();

    /// <summary>Gets the measurements of the control service's <c>MeshKit</c> meter since it last started.</summary>
    public MetricRecorder Metrics { get; private set; } = null!;

    /// <summary>Gets the running application's services.</summary>
    public IServiceProvider Services => _app?.Services ?? throw new InvalidOperationException("The control service is not running.");

    /// <summary>Gets the current trust bundle, read from the data folder the control service writes it to.</summary>
    public TrustBundle TrustBundle => TrustBundle.FromPem(File.ReadAllText(TrustBundlePath));

    /// <summary>Gets the path of the trust bundle file the control service keeps in its data folder.</summary>
    public string TrustBundlePath => Path.Combine(DataDirectory, "trust-bundle.pem");

    /// <summary>Starts a control service.</summary>
    /// <param name="settings">Extra settings, as configuration keys (<c>ControlPlane:CertificateLifetime</c>).</param>
    /// <param name="dataDirectory">A data folder to reuse; a new temporary one by default.</param>
    public static async Task<ControlPlaneHost> StartAsync(IDictionary<string, string?>? settings = null, string? dataDirectory = null)
    {
        TempDirectory? owned = null;
        if (dataDirectory is null)
        {
            owned = new TempDirectory("cp");
            dataDirectory = owned.Path;
        }

        var all = DefaultSettings(dataDirectory);
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            all[key] = value;
        }

        var host = new ControlPlaneHost(dataDirectory, owned, all);
        await host.StartAsync().ConfigureAwait(false);
        return host;
    }

    /// <summary>
    /// The settings every test control service starts with (the test trust domain and admin token, 5 s certificates), in
    /// this process or as a process of its own (<see cref="ControlPlaneProcess"/>).
    /// </summary>
    /// <param name="dataDirectory">Its data folder.</param>
    public static Dictionary<string, string?> DefaultSettings(string dataDirectory) => new(StringComparer.OrdinalIgnoreCase)
    {
        ["ControlPlane:TrustDomain"] = TrustDomain,
        ["ControlPlane:AdminToken"] = AdminToken,
        ["ControlPlane:DataDirectory"] = dataDirectory,
        ["ControlPlane:CertificateLifetime"] = "00:00:05",
        ["ControlPlane:MaxWatchWait"] = "00:00:30",
    };

    /// <summary>Starts the control service again (after <see cref="StopAsync"/>), on the same port when it is free.</summary>
    public async Task StartAsync()
    {
        if (_app is not null)
        {
            return;
        }

        var url = $"https://127.0.0.1:{_port}";
        _app = ControlPlaneApplication.Create(["--urls", url], builder =>
        {
            builder.Configuration.AddInMemoryCollection(_settings);
            builder.Logging.ClearProviders();
            builder.Logging.AddProvider(Logs);
            builder.Logging.SetMinimumLevel(LogLevel.Debug);
        });
        Metrics?.Dispose();
        Metrics = new MetricRecorder(_app.Services);
        await _app.StartAsync().ConfigureAwait(false);
        BaseAddress = new Uri(ControlPlaneApplication.GetAddresses(_app)[0].GetLeftPart(UriPartial.Authority) + "/");
        _port = BaseAddress.Port;
    }

    /// <summary>Stops the control service (an outage); its data folder is kept.</summary>
    public async Task StopAsync()
    {
        if (_app is null)
        {
            return;
        }

        var app = _app;
        _app = null;
        await app.StopAsync().ConfigureAwait(false);
        await app.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Creates an HttpClient that trusts the control service through its trust bundle.</summary>
    /// <param name="clientCertificate">A client certificate to present (renewal), if any.</param>
    /// <param name="bearer">A bearer token to send, if any.</param>
    public HttpClient CreateClient(X509Certificate2? clientCertificate = null, string? bearer = null) =>
        CreateClient(BaseAddress, TrustBundle, clientCertificate, bearer);

    /// <summary>Creates an HttpClient for the control service at <paramref name="baseAddress"/> that trusts it through <paramref name="bundle"/>.</summary>
    internal static HttpClient CreateClient(Uri baseAddress, TrustBundle bundle, X509Certificate2? clientCertificate, string? bearer)
    {
        var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, chain, _) =>
                    SvidValidator.Validate(certificate as X509Certificate2, chain?.ChainPolicy.ExtraStore, bundle, TrustDomain, DateTimeOffset.UtcNow, SvidUsage.Server).IsValid,
                ClientCertificates = clientCertificate is null ? null : [clientCertificate],
                LocalCertificateSelectionCallback = clientCertificate is null ? null : (_, _, _, _, _) => clientCertificate,
            },
            PooledConnectionLifetime = TimeSpan.FromSeconds(30),
        };
        var client = new HttpClient(handler) { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
        if (bearer is not null)
        {
            client.DefaultRequestHeaders.Authorization = new("Bearer", bearer);
        }

        return client;
    }

    /// <summary>Creates an HttpClient authenticated as admin.</summary>
    public HttpClient CreateAdminClient() => CreateClient(bearer: AdminToken);

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        Metrics?.Dispose();
        _ownedDirectory?.Dispose();
    }
}
