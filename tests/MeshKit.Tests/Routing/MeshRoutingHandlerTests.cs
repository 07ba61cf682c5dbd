using System.Diagnostics.Metrics;
using System.Net;
using MeshKit.Discovery;
using MeshKit.Hosting;
using MeshKit.Identity;
using MeshKit.Policy;
using MeshKit.Routing;
using MeshKit.Telemetry;
using MeshKit.Tests.Hosting;
using MeshKit.Transport;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace MeshKit.Tests.Routing;

/// <summary>
/// The route stage with the mesh's random source and clock fixed: the weighted split and fault injection, without the
/// wire (the split on real endpoints is in Traffic/RoutingTests).
/// </summary>
[Trait("Area", "Traffic")]
public sealed class MeshRoutingHandlerTests : IDisposable
{
    private readonly FakeTimeProvider _time = new();
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly MeshDestination.Cache _destinations = new("mesh.local", new MeshDestinationNames("default", [], null));
    private readonly PolicyWatcher _policies;

    public MeshRoutingHandlerTests()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Mesh:Policy:Destinations:orders:Routes:0:Name"] = "chaos",
            ["Mesh:Policy:Destinations:orders:Routes:0:Match:Path:Prefix"] = "/chaos",
            ["Mesh:Policy:Destinations:orders:Routes:0:Fault:Delay:Percent"] = "100",
            ["Mesh:Policy:Destinations:orders:Routes:0:Fault:Delay:Duration"] = "00:01:00",
            ["Mesh:Policy:Destinations:orders:Routes:1:Name"] = "flaky",
            ["Mesh:Policy:Destinations:orders:Routes:1:Match:Path:Prefix"] = "/flaky",
            ["Mesh:Policy:Destinations:orders:Routes:1:Fault:Abort:Percent"] = "25",
            ["Mesh:Policy:Destinations:orders:Routes:1:Fault:Abort:Status"] = "503",
            ["Mesh:Policy:Destinations:orders:Routes:2:Name"] = "canary",
            ["Mesh:Policy:Destinations:orders:Routes:2:Match:Path:Prefix"] = "/",
            ["Mesh:Policy:Destinations:orders:Routes:2:Split:v1"] = "90",
            ["Mesh:Policy:Destinations:orders:Routes:2:Split:v2"] = "10",
        }).Build();
        var metrics = new MeshMetrics(_services.GetRequiredService<IMeterFactory>());
        _policies = new PolicyWatcher(configuration, new ConfigurationLoadFailures(), metrics, NullLogger<PolicyWatcher>.Instance);
    }

    [Theory]
    [InlineData(0.0, "v1")]
    [InlineData(0.899, "v1")]
    [InlineData(0.9, "v2")]
    [InlineData(0.999, "v2")]
    public async Task The_split_draw_comes_from_the_mesh_random_source(double draw, string subset)
    {
        var calls = await SendAsync(new MeshRandom(new ScriptedRandom(draw)), "/api", requests: 1);

        Assert.Equal(subset, calls[0].Subset);
        Assert.Equal("split", calls[0].SubsetReason);
    }

    [Fact]
    public async Task With_a_fixed_seed_the_weighted_split_sends_the_same_requests_to_the_canary_every_run()
    {
        var first = Subsets(await SendAsync(new MeshRandom(new Random(90)), "/api", requests: 1000));
        var again = Subsets(await SendAsync(new MeshRandom(new Random(90)), "/api", requests: 1000));

        Assert.Equal(first, again);
        Assert.InRange(first.Count(s => s == "v2"), 70, 130);
    }

    [Fact]
    public async Task A_fault_delay_holds_the_request_for_its_duration_on_the_mesh_clock()
    {
        var send = SendOneAsync(new MeshRandom(new ScriptedRandom(0.999)), "/chaos");

        _time.Advance(TimeSpan.FromMinutes(1) - TimeSpan.FromTicks(1));
        Assert.False(send.IsCompleted);

        _time.Advance(TimeSpan.FromTicks(1));
        using var response = await send.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Theory]
    [InlineData(0.2499, HttpStatusCode.ServiceUnavailable)]
    [InlineData(0.25, HttpStatusCode.OK)]
    public async Task An_abort_fault_answers_the_share_its_percent_names(double draw, HttpStatusCode status)
    {
        using var response = await SendOneAsync(new MeshRandom(new ScriptedRandom(draw)), "/flaky");

        Assert.Equal(status, response.StatusCode);
        Assert.Equal(status != HttpStatusCode.OK, response.Headers.Contains("x-mesh-fault"));
    }

    public void Dispose()
    {
        _destinations.Dispose();
        _services.Dispose();
    }

    private static List<string?> Subsets(List<MeshCall> calls) => [.. calls.Select(c => c.Subset)];

    private async Task<List<MeshCall>> SendAsync(MeshRandom random, string path, int requests)
    {
        var calls = new List<MeshCall>();
        for (var i = 0; i < requests; i++)
        {
            using var response = await SendOneAsync(random, path);
            calls.Add(MeshCall.Of(response.RequestMessage!)!);
        }

        return calls;
    }

    private Task<HttpResponseMessage> SendOneAsync(MeshRandom random, string path)
    {
        var mirror = new MirrorSender(NullLogger<MirrorSender>.Instance, _time);
        var invoker = new HttpMessageInvoker(new MeshRoutingHandler(_policies, mirror, random, _time) { InnerHandler = new Terminal() });
        var request = new HttpRequestMessage(HttpMethod.Get, new Uri($"https://orders{path}"));
        request.Options.Set(MeshCall.OptionsKey, new MeshCall(_destinations.Get(request.RequestUri)!, HttpMethod.Get));
        return invoker.SendAsync(request, TestContext.Current.CancellationToken);
    }

    /// <summary>Stands in for the stages below: answers 200 at once.</summary>
    private sealed class Terminal : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK) { RequestMessage = request });
    }
}
