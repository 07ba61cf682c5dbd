using System.Net;
using MeshKit.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MeshKit.Testing;

/// <summary>
/// A real ASP.NET Core app that calls <c>builder.AddMesh()</c>: a mesh endpoint on 127.0.0.1 with a dynamic port, a
/// public plain-HTTP endpoint, a certificate from the given control service, and the routes the test maps.
/// </summary>
public sealed class MeshAppHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly TempDirectory? _ownedStateDirectory;

    private MeshAppHost(WebApplication app, string service, TestLogSink logs, MetricRecorder metrics, string stateDirectory, TempDirectory? ownedStateDirectory)
    {
        _app = app;
        Service = service;
        Logs = logs;
        Metrics = metrics;
        StateDirectory = stateDirectory;
        _ownedStateDirectory = ownedStateDirectory;
    }

    public string Service { get; }

    /// <summary>
    /// Gets <c>Mesh:ControlPlane:StateDirectory</c> as the host set it: a temporary folder of its own unless the test
    /// passed one (to keep it across a restart), so that no test writes into the real per-user folder.
    /// </summary>
    public string StateDirectory { get; }

    public TestLogSink Logs { get; }

    public MetricRecorder Metrics { get; }

    public IServiceProvider Services => _app.Services;

    /// <summary>Gets the mesh endpoint's address, for example 127.0.0.1:40001.</summary>
    public IPEndPoint MeshEndPoint => Services.GetRequiredService<MeshEndpointInfo>().BoundEndPoint
        ?? throw new InvalidOperationException("This app has no mesh endpoint.");

    /// <summary>Gets the public endpoint's base address (plain HTTP).</summary>
    public Uri PublicAddress
    {
        get
        {
            var addresses = Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
            var mesh = MeshEndPoint.Port;
            var http = addresses.Select(a => new Uri(a)).First(u => u.Scheme == Uri.UriSchemeHttp && u.Port != mesh);
            return new Uri($"http://127.0.0.1:{http.Port}/");
        }
    }

    /// <summary>Starts a mesh app.</summary>
    /// <param name="controlPlane">The control service it gets its certificate from.</param>
    /// <param name="service">Its service name.</param>
    /// <param name="joinToken">Its join token.</param>
    /// <param name="settings">Further settings (<c>Mesh:...</c>), applied last.</param>
    /// <param name="configureServices">Services to add (mesh clients, say).</param>
    /// <param name="map">Routes to map.</param>
    /// <param name="meshEndpoint">Whether it has a mesh endpoint.</param>
    /// <param name="jsonFile">A JSON settings file to add last, reloaded on change.</param>
    /// <param name="stateDirectory">
    /// The workload's state folder (<c>Mesh:ControlPlane:StateDirectory</c>), to reuse one across a restart; by default a
    /// new temporary folder, deleted with the host. <paramref name="settings"/> may still override the key.
    /// </param>
    /// <param name="addOns">
    /// Mesh add-ons to call on the builder right after <c>AddMesh()</c>, as an app would (for example
    /// <c>b =&gt; b.AddMeshConsulDiscovery()</c>).
    /// </param>
    public static Task<MeshAppHost> StartAsync(
        ControlPlaneHost controlPlane,
        string service,
        string joinToken,
        IDictionary<string, string?>? settings = null,
        Action<IServiceCollection>? configureServices = null,
        Action<WebApplication>? map = null,
        bool meshEndpoint = true,
        string? jsonFile = null,
        string? stateDirectory = null,
        Action<IHostApplicationBuilder>? addOns = null) =>
        StartAsync(controlPlane.BaseAddress, controlPlane.TrustBundlePath, service, joinToken, settings, configureServices, map, meshEndpoint, jsonFile, stateDirectory, addOns);

    /// <summary>Starts a mesh app against a control service given by address and trust bundle (one running as a process, say).</summary>
    /// <param name="controlPlaneAddress">The control service's address (<c>Mesh:ControlPlane:Address</c>).</param>
    /// <param name="trustBundlePath">The trust bundle the workload trusts it with (<c>Mesh:ControlPlane:TrustBundlePath</c>).</param>
    /// <param name="service">Its service name.</param>
    /// <param name="joinToken">Its join token.</param>
    /// <param name="settings">Further settings (<c>Mesh:...</c>), applied last.</param>
    /// <param name="configureServices">Services to add (mesh clients, say).</param>
    /// <param name="map">Routes to map.</param>
    /// <param name="meshEndpoint">Whether it has a mesh endpoint.</param>
    /// <param name="jsonFile">A JSON settings file to add last, reloaded on change.</param>
    /// <param name="stateDirectory">The workload's state folder; by default a new temporary folder, deleted with the host.</param>
    /// <param name="addOns">Mesh add-ons to call on the builder right after <c>AddMesh()</c>.</param>
    public static async Task<MeshAppHost> StartAsync(
        Uri controlPlaneAddress,
        string trustBundlePath,
        string service,
        string joinToken,
        IDictionary<string, string?>? settings = null,
        Action<IServiceCollection>? configureServices = null,
        Action<WebApplication>? map = null,
        bool meshEndpoint = true,
        string? jsonFile = null,
        string? stateDirectory = null,
        Action<IHostApplicationBuilder>? addOns = null)
    {
        TempDirectory? ownedState = null;
        if (stateDirectory is null)
        {
            ownedState = new TempDirectory("state");
            stateDirectory = ownedState.Path;
        }

        try
        {
            return await StartCoreAsync(controlPlaneAddress, trustBundlePath, service, joinToken, settings, configureServices, map, meshEndpoint, jsonFile, stateDirectory, ownedState, addOns).ConfigureAwait(false);
        }
        catch
        {
            ownedState?.Dispose();
            throw;
        }
    }

    private static async Task<MeshAppHost> StartCoreAsync(
        Uri controlPlaneAddress,
        string trustBundlePath,
        string service,
        string joinToken,
        IDictionary<string, string?>? settings,
        Action<IServiceCollection>? configureServices,
        Action<WebApplication>? map,
        bool meshEndpoint,
        string? jsonFile,
        string stateDirectory,
        TempDirectory? ownedState,
        Action<IHostApplicationBuilder>? addOns)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var all = new Dictionary<string, string?>
        {
            ["Mesh:Service:Name"] = service,
            ["Mesh:TrustDomain"] = ControlPlaneHost.TrustDomain,
            ["Mesh:ControlPlane:Address"] = controlPlaneAddress.ToString(),
            ["Mesh:ControlPlane:JoinToken"] = joinToken,
            ["Mesh:ControlPlane:TrustBundlePath"] = trustBundlePath,
            ["Mesh:ControlPlane:StartupTimeout"] = "00:00:10",
            ["Mesh:ControlPlane:WatchWait"] = "00:00:01",
            ["Mesh:Identity:RetryBaseDelay"] = "00:00:00.200",
            ["Mesh:Identity:RetryMaxDelay"] = "00:00:01",

            // Tests' certificates live 5 s: renewing at about a third (not half) leaves a renewal 3 s before expiry, enough
            // on a busy 2-core machine; rotations stay frequent. Tests of the renewal point set their own.
            ["Mesh:Identity:RenewalFraction"] = "0.35",
            ["Mesh:ControlPlane:StateDirectory"] = stateDirectory,
        };
        if (meshEndpoint)
        {
            all["Mesh:Endpoint:Port"] = "0";
            all["Mesh:Endpoint:Address"] = "127.0.0.1";
        }

        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            all[key] = value;
        }

        builder.Configuration.AddInMemoryCollection(all);
        if (jsonFile is not null)
        {
            // A real appsettings-style file, watched for changes like the app's own.
            builder.Configuration.AddJsonFile(jsonFile, optional: false, reloadOnChange: true);
        }

        var logs = new TestLogSink();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(logs);
        builder.Logging.SetMinimumLevel(LogLevel.Debug);
        builder.AddMesh();
        addOns?.Invoke(builder);
        configureServices?.Invoke(builder.Services);

        var app = builder.Build();
        var metrics = new MetricRecorder(app.Services);
        map?.Invoke(app);
        try
        {
            await app.StartAsync().ConfigureAwait(false);
        }
        catch
        {
            metrics.Dispose();
            await app.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return new MeshAppHost(app, service, logs, metrics, stateDirectory, ownedState);
    }

    /// <summary>The static-discovery settings that point <paramref name="destination"/> at this app's mesh endpoint.</summary>
    public IEnumerable<KeyValuePair<string, string?>> AsStaticEndpoint(string destination, int index = 0, string? version = null)
    {
        yield return new($"Mesh:Discovery:Static:{destination}:{index}:Address", $"127.0.0.1:{MeshEndPoint.Port}");
        if (version is not null)
        {
            yield return new($"Mesh:Discovery:Static:{destination}:{index}:Version", version);
        }
    }

    public async Task StopAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        Metrics.Dispose();
        await _app.DisposeAsync().ConfigureAwait(false);
        _ownedStateDirectory?.Dispose();
    }
}
