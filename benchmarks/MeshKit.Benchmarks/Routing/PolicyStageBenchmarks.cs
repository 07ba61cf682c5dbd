using System.Net;
using BenchmarkDotNet.Attributes;
using MeshKit.Authorization;
using MeshKit.Balancing;
using MeshKit.Benchmarks.Support;
using MeshKit.Discovery;
using MeshKit.Hosting;
using MeshKit.Identity;
using MeshKit.Policy;
using MeshKit.Routing;
using Microsoft.Extensions.Configuration;

namespace MeshKit.Benchmarks.Routing;

/// <summary>
/// The per-request decisions of the policy stages, each as its handler makes it: policy lookup, route match, subset
/// pick, endpoint choice (power of two choices over peak EWMA), and the server's authorization decision.
/// </summary>
public class PolicyStageBenchmarks : TelemetryToggle
{
    private static readonly SpiffeId Caller = SpiffeId.Parse("spiffe://mesh.local/ns/default/svc/frontend");
    private PolicySnapshot _snapshot = null!;
    private DestinationPolicy _orders = null!;
    private RoutePolicy _route = null!;
    private MeshEndpoint[] _endpoints = null!;
    private EndpointStateRegistry _states = null!;
    private ILoadBalancingPolicy _balancer = null!;

    [GlobalSetup]
    public void Setup()
    {
        StartTelemetry();
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Mesh:Policy:Destinations:inventory:Timeout"] = "00:00:02",
            ["Mesh:Policy:Destinations:orders:Routes:0:Name"] = "admin",
            ["Mesh:Policy:Destinations:orders:Routes:0:Match:Path:Prefix"] = "/admin",
            ["Mesh:Policy:Destinations:orders:Routes:0:Split:v1"] = "1",
            ["Mesh:Policy:Destinations:orders:Routes:1:Name"] = "beta",
            ["Mesh:Policy:Destinations:orders:Routes:1:Match:Path:Prefix"] = "/api",
            ["Mesh:Policy:Destinations:orders:Routes:1:Match:Headers:x-beta"] = "yes",
            ["Mesh:Policy:Destinations:orders:Routes:1:Split:v2"] = "1",
            ["Mesh:Policy:Destinations:orders:Routes:2:Name"] = "canary",
            ["Mesh:Policy:Destinations:orders:Routes:2:Match:Path:Prefix"] = "/api",
            ["Mesh:Policy:Destinations:orders:Routes:2:Match:Methods:0"] = "GET",
            ["Mesh:Policy:Destinations:orders:Routes:2:Split:v1"] = "90",
            ["Mesh:Policy:Destinations:orders:Routes:2:Split:v2"] = "10",
            ["Mesh:Authorization:Rules:0:Name"] = "no-admin",
            ["Mesh:Authorization:Rules:0:Action"] = "Deny",
            ["Mesh:Authorization:Rules:0:To:Paths:0"] = "/api/admin/*",
            ["Mesh:Authorization:Rules:1:Name"] = "frontend-reads",
            ["Mesh:Authorization:Rules:1:From:Services:0"] = "frontend",
            ["Mesh:Authorization:Rules:1:To:Paths:0"] = "/api/*",
            ["Mesh:Authorization:Rules:1:To:Methods:0"] = "GET",
        }).Build();
        _snapshot = PolicyReader.Read(configuration.GetSection("Mesh")).Snapshot!;
        _orders = _snapshot.For("orders");
        _route = _orders.Routes[2];
        _endpoints =
        [
            new MeshEndpoint(new IPEndPoint(IPAddress.Loopback, 5001), MeshEndpointMetadata.Empty),
            new MeshEndpoint(new IPEndPoint(IPAddress.Loopback, 5002), MeshEndpointMetadata.Empty),
            new MeshEndpoint(new IPEndPoint(IPAddress.Loopback, 5003), MeshEndpointMetadata.Empty),
        ];
        _states = new EndpointStateRegistry(new MeshEndpointRegistry([], new MeshDestinationNames("default", [], null), TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger<MeshEndpointRegistry>.Instance), TimeProvider.System);
        foreach (var endpoint in _endpoints)
        {
            _states.Get("orders", endpoint.Key);
        }

        _balancer = ILoadBalancingPolicy.Create(_orders.LoadBalancer, "orders", _states, MeshRandom.Shared);
    }

    [GlobalCleanup]
    public void Cleanup() => StopTelemetry();

    /// <summary>RouteStage: the destination's policy in the current snapshot.</summary>
    [Benchmark]
    public DestinationPolicy PolicyLookup() => _snapshot.For("orders");

    /// <summary>RouteStage: the first matching route (the third of three, after a header and a prefix miss).</summary>
    [Benchmark]
    public RoutePolicy? RouteMatch() => RouteMatcher.Match(_orders, "GET", "/api/orders/42", new NoHeaders());

    /// <summary>RouteStage: the subset pick (no override header on the request, so the weighted split draws).</summary>
    [Benchmark]
    public string? SubsetPick() => SubsetSelector.Select(_snapshot.SubsetHeader, _route, new NoHeaders(), MeshRandom.Shared.Next(_route.Split!.Total)).Subset;

    /// <summary>EndpointStage: power of two choices over three endpoints.</summary>
    [Benchmark]
    public string EndpointChoice() => EndpointSelector.Choose(_endpoints, "orders", _states, avoid: null, _states.Now, _balancer).Key;

    /// <summary>The server's authorization decision (matcher policy), on a route template.</summary>
    [Benchmark]
    public bool AuthorizationDecision() => MeshAuthorizationEvaluator.Evaluate(_snapshot.Authorization, Caller, "GET", "/api/orders/{id}").Allowed;

    private readonly struct NoHeaders : IHeaderSource
    {
        public string? Get(string name) => null;
    }
}
