using MeshKit.Consul;
using MeshKit.Discovery;
using MeshKit.Testing;
using MeshKit.Testing.Consul;
using MeshKit.Tests.Identity;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace MeshKit.Tests.Discovery;

/// <summary>An instance of a mesh service that registers itself in a Consul double through <c>AddMesh().AddMeshConsulDiscovery()</c>, and counts what it serves.</summary>
public sealed class ConsulServiceApp : IAsyncDisposable
{
    private int _served;

    private ConsulServiceApp(string service, string instance)
    {
        Service = service;
        Instance = instance;
    }

    public string Service { get; }

    /// <summary>Gets <c>Mesh:Service:InstanceId</c>; also what the default route answers.</summary>
    public string Instance { get; }

    /// <summary>Gets the Consul instance ID MeshKit registers: <c>&lt;service&gt;-&lt;instance&gt;</c>.</summary>
    public string ServiceId => $"{Service}-{Instance}";

    /// <summary>Gets the ID of the instance's TTL check.</summary>
    public string CheckId => "service:" + ServiceId;

    public MeshAppHost Host { get; private set; } = null!;

    public int Served => Volatile.Read(ref _served);

    /// <summary>Gets the self-registration hosted service.</summary>
    internal ConsulSelfRegistration Registration => Host.Services.GetServices<IHostedService>().OfType<ConsulSelfRegistration>().Single();

    /// <summary>Starts an instance; every route answers its instance name unless <paramref name="handler"/> answers.</summary>
    public static async Task<ConsulServiceApp> StartAsync(
        MeshTestBed bed,
        ConsulDouble consul,
        string service,
        string instance,
        IDictionary<string, string?>? settings = null,
        Action<IServiceCollection>? configureServices = null,
        Func<HttpContext, Task>? handler = null)
    {
        var app = new ConsulServiceApp(service, instance);
        app.Host = await MeshAppHost.StartAsync(bed.ControlPlane, service, MeshTestBed.Token, ConsulMeshApps.Settings(consul, instance, settings), configureServices,
            addOns: ConsulMeshApps.AddConsul,
            map: web => web.Map("/{**path}", async (HttpContext http) =>
            {
                Interlocked.Increment(ref app._served);
                if (handler is not null)
                {
                    await handler(http);
                }
                else
                {
                    await http.Response.WriteAsync(instance);
                }
            }));
        return app;
    }

    public ValueTask DisposeAsync() => Host.DisposeAsync();
}

/// <summary>Settings and callers for mesh apps that use a Consul double: short waits and back-off, a 10 s TTL (tests of a lapse set their own).</summary>
public static class ConsulMeshApps
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    /// <summary>The Consul health path the callers' blocking queries on <c>orders</c> use.</summary>
    public const string OrdersHealthPath = "/v1/health/service/orders";

    /// <summary>The Consul add-on, as an app adds it after <c>AddMesh()</c>.</summary>
    public static void AddConsul(IHostApplicationBuilder builder) => builder.AddMeshConsulDiscovery();

    /// <summary>The settings that turn Consul on for a mesh app (a one-minute wait, so a change can only arrive on the waiting query).</summary>
    public static Dictionary<string, string?> Settings(ConsulDouble consul, string instance, IDictionary<string, string?>? more = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Mesh:Discovery:Consul:Address"] = consul.Address.ToString(),
            ["Mesh:Discovery:Consul:Wait"] = "00:01:00",
            ["Mesh:Discovery:Consul:MinimumQueryInterval"] = "00:00:00.050",
            ["Mesh:Discovery:Consul:RetryBaseDelay"] = "00:00:00.100",
            ["Mesh:Discovery:Consul:RetryMaxDelay"] = "00:00:01",
            ["Mesh:Discovery:Consul:RequestTimeout"] = "00:00:05",
            ["Mesh:Discovery:Consul:Ttl"] = "00:00:10",
            ["Mesh:Discovery:Consul:HealthCheckInterval"] = "00:00:00.200",
            ["Mesh:Service:InstanceId"] = instance,
        };
        foreach (var (key, value) in more ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        return settings;
    }

    /// <summary>Starts <c>frontend</c> without a mesh endpoint, discovering <paramref name="destination"/> through Consul.</summary>
    public static Task<MeshAppHost> StartCallerAsync(MeshTestBed bed, ConsulDouble consul, string destination = "orders", IDictionary<string, string?>? settings = null) =>
        MeshAppHost.StartAsync(bed.ControlPlane, "frontend", MeshTestBed.Token, Settings(consul, "frontend-1", settings),
            configureServices: services => services.AddMeshClient(destination), meshEndpoint: false, addOns: AddConsul);

    /// <summary>Gets the mesh client for <paramref name="destination"/>.</summary>
    public static HttpClient MeshClient(this MeshAppHost host, string destination = "orders") =>
        host.Services.GetRequiredService<IHttpClientFactory>().CreateClient(destination);

    /// <summary>Gets the endpoints the app's registry currently holds for <paramref name="destination"/>.</summary>
    internal static async Task<EndpointSet> EndpointsAsync(this MeshAppHost host, string destination = "orders") =>
        await host.Services.GetRequiredService<MeshEndpointRegistry>().GetAsync(destination, TestContext.Current.CancellationToken);

    /// <summary>
    /// Waits until the instance's check passes with the output its first report sets: from then on its renewals change
    /// nothing in Consul, so they wake no blocking query.
    /// </summary>
    public static async Task WaitForSettledAsync(ConsulDouble consul, ConsulServiceApp app)
    {
        using var client = Client(consul);
        await Eventually.WaitAsync(async () =>
        {
            var entries = (await client.GetHealthServiceAsync(app.Service, new ConsulHealthQuery { PassingOnly = false }, TestContext.Current.CancellationToken)).Value;
            return entries.Any(e => e.Checks.Any(c => c.Id == app.CheckId && c.Status == "passing" && c.Output.Contains("ready", StringComparison.Ordinal)));
        }, Deadline, $"{app.ServiceId} to pass and report");
    }

    /// <summary>A Consul client on the double, to register instances MeshKit did not (impostors, other weights).</summary>
    public static ConsulClient Client(ConsulDouble consul) =>
        new(Options.Create(new ConsulOptions { Address = consul.Address }), NullLoggerFactory.Instance);
}
