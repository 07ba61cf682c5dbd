using System.Net.Http.Json;
using System.Text.Json;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using MeshKit.EndToEnd.Tests.Aspire;

namespace MeshKit.EndToEnd.Tests.Shop;

/// <summary>
/// The Shop sample's AppHost, started once for a test class with Aspire.Hosting.Testing: the real control service, the
/// four services as processes, and the real Aspire dashboard (turned on, its URL discovered). The traffic generator is off,
/// so every request the services see is one the tests sent, tagged with a run id.
/// </summary>
public sealed class ShopAppFixture : IAsyncLifetime
{
    /// <summary>The resources the AppHost starts besides the control service.</summary>
    public static readonly string[] Services = ["inventory", "orders-v1", "orders-v2", "frontend"];

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(150);
    private DistributedApplication? _app;
    private readonly List<HttpClient> _clients = [];

    /// <summary>Gets a prefix unique to this AppHost run, for the <c>x-shop-run</c> tags of the tests' requests.</summary>
    public string RunId { get; } = $"e2e-{Guid.NewGuid():N}"[..16];

    /// <summary>Gets the running AppHost.</summary>
    public DistributedApplication App => _app ?? throw new InvalidOperationException("The AppHost has not started.");

    /// <summary>Gets a client of the dashboard, whose telemetry API answers without credentials.</summary>
    public HttpClient Dashboard { get; private set; } = null!;

    /// <summary>Gets how long the AppHost took to start and report every service healthy.</summary>
    public TimeSpan StartDuration { get; private set; }

    public async ValueTask InitializeAsync()
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        using var deadline = new CancellationTokenSource(StartTimeout);
        var cancellationToken = deadline.Token;
        var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.Shop_AppHost>(
            [.. AspireDashboard.UnsecuredArguments, "--Shop:TrafficGenerator:Enabled=false"],
            (options, _) => AspireDashboard.EnableDashboard(options),
            cancellationToken);
        _app = await builder.BuildAsync(cancellationToken);
        await _app.StartAsync(cancellationToken);

        // Healthy: the control service answers over TLS, and each service's /health passes (MeshKit's checks included:
        // it holds a certificate, its policy loaded, discovery answers).
        await _app.ResourceNotifications.WaitForResourceHealthyAsync("mesh", cancellationToken);
        await Task.WhenAll(Services.Select(s => _app.ResourceNotifications.WaitForResourceHealthyAsync(s, cancellationToken)));

        Dashboard = Track(new HttpClient { BaseAddress = AspireDashboard.GetUrl(_app), Timeout = TimeSpan.FromSeconds(60) });
        await WarmUpAsync(cancellationToken);
        StartDuration = started.Elapsed;
        TestContext.Current.SendDiagnosticMessage($"The Shop AppHost started and reported every service healthy in {StartDuration.TotalSeconds:0.0} s.");
    }

    /// <summary>
    /// Places one untagged order through each version of orders, so that the tests' first orders do not pay for the first
    /// calls' connections and JIT (orders' first gRPC call to inventory can outlast frontend's 3 s attempt timeout on a
    /// loaded machine, and a retried order has two traces' worth of spans in one trace).
    /// </summary>
    private async Task WarmUpAsync(CancellationToken cancellationToken)
    {
        using var frontend = PublicClient("frontend");
        foreach (var version in new[] { "v1", "v2" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/orders") { Content = JsonContent.Create(new { sku = "croissant", quantity = 1 }) };
            request.Headers.Add("x-mesh-subset", version);
            using var response = await frontend.SendAsync(request, cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                throw new InvalidOperationException($"The warm-up order through orders {version} failed: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(cancellationToken)}");
            }
        }
    }

    /// <summary>
    /// A client of a resource's public http endpoint that sends no trace headers of its own, so that a test can choose
    /// the trace id of its request.
    /// </summary>
    public HttpClient PublicClient(string resource) => Track(new HttpClient(new SocketsHttpHandler { ActivityHeadersPropagator = null })
    {
        BaseAddress = App.GetEndpoint(resource, "http"),
        Timeout = TimeSpan.FromSeconds(30),
    });

    /// <summary>Reads spans from the dashboard's telemetry API (<c>path</c> with its query).</summary>
    public async Task<List<DashboardSpan>> ReadSpansAsync(string path, CancellationToken cancellationToken)
    {
        using var response = await Dashboard.GetAsync(path, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            return [];
        }

        return DashboardSpan.Read(await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken));
    }

    /// <summary>Polls the dashboard until the spans read from <paramref name="path"/> satisfy <paramref name="done"/>.</summary>
    public async Task<List<DashboardSpan>> PollSpansAsync(string path, Func<List<DashboardSpan>, bool> done, TimeSpan timeout, string what, CancellationToken cancellationToken)
    {
        List<DashboardSpan> last = [];
        try
        {
            await MeshKit.Testing.Eventually.WaitAsync(
                async () =>
                {
                    last = await ReadSpansAsync(path, cancellationToken);
                    return done(last);
                },
                timeout,
                what,
                TimeSpan.FromMilliseconds(500));
        }
        catch (TimeoutException ex)
        {
            throw new TimeoutException($"{ex.Message} Last answer of {path}: {last.Count} spans.{Environment.NewLine}{string.Join(Environment.NewLine, last.Take(40))}", ex);
        }

        return last;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }

        if (_app is not null)
        {
            await _app.DisposeAsync();
        }
    }

    private HttpClient Track(HttpClient client)
    {
        lock (_clients)
        {
            _clients.Add(client);
        }

        return client;
    }
}
