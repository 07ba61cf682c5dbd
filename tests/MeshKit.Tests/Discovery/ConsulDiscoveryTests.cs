using MeshKit.Consul;
using MeshKit.Discovery;
using MeshKit.Testing;
using MeshKit.Testing.Consul;
using MeshKit.Tests.Identity;
using MeshKit.Transport;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.ServiceDiscovery;
using static MeshKit.Tests.Discovery.ConsulMeshApps;

namespace MeshKit.Tests.Discovery;

/// <summary>Mesh calls find their destinations through Consul: changes are pushed, metadata arrives, identity is not taken from it.</summary>
[Trait("Area", "Discovery")]
public sealed class ConsulDiscoveryTests(MeshTestBed bed) : IClassFixture<MeshTestBed>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_new_instance_arrives_on_the_waiting_blocking_query_and_a_mesh_call_reaches_it()
    {
        await using var consul = await ConsulDouble.StartAsync();
        await using var first = await ConsulServiceApp.StartAsync(bed, consul, "orders", "a");
        await WaitForSettledAsync(consul, first);
        await using var frontend = await StartCallerAsync(bed, consul);
        var client = frontend.MeshClient();
        Assert.Equal("a", await client.GetStringAsync("/", Ct));

        // The frontend's blocking query on orders is now parked in Consul, with a one-minute wait.
        await Eventually.WaitAsync(() => consul.InFlight(OrdersHealthPath) == 1, Deadline, "the blocking query on orders to be waiting");
        var requestsBefore = consul.CountRequests(OrdersHealthPath);

        await using var second = await ConsulServiceApp.StartAsync(bed, consul, "orders", "b");
        await Eventually.WaitAsync(async () => await client.GetStringAsync("/", Ct) == "b", Deadline, "a mesh call to reach orders-b");

        // The waiting query returned the change (a one-minute wait cannot have run out). The new instance makes at most
        // two writes (its registration, then its check's first output), so at most two more queries were sent: no polling.
        Assert.InRange(consul.CountRequests(OrdersHealthPath) - requestsBefore, 1, 2);
        Assert.True(second.Served >= 1);
    }

    [Fact]
    public async Task An_instance_whose_TTL_lapses_vanishes_from_discovery_and_calls_stop_going_there()
    {
        await using var consul = await ConsulDouble.StartAsync();
        var ttl = new Dictionary<string, string?> { ["Mesh:Discovery:Consul:Ttl"] = "00:00:01" };
        await using var healthy = await ConsulServiceApp.StartAsync(bed, consul, "orders", "a", ttl);
        await using var hung = await ConsulServiceApp.StartAsync(bed, consul, "orders", "b", ttl);
        await Eventually.WaitAsync(() => consul.CheckStatus(healthy.CheckId) == "passing" && consul.CheckStatus(hung.CheckId) == "passing", Deadline, "both instances to pass");
        await using var frontend = await StartCallerAsync(bed, consul);
        var client = frontend.MeshClient();
        await Eventually.WaitAsync(async () =>
        {
            await client.GetStringAsync("/", Ct);
            return healthy.Served > 0 && hung.Served > 0;
        }, Deadline, "calls to reach both instances");

        // orders-b stops reporting (hung, or cut off from its agent) but keeps serving: only its TTL can tell.
        await hung.Registration.Registrar!.DisposeAsync();
        await Eventually.WaitAsync(() => consul.CheckStatus(hung.CheckId) == "critical", Deadline, "the TTL of orders-b to lapse");
        await Eventually.WaitAsync(async () => (await frontend.EndpointsAsync()).Endpoints.Length == 1, Deadline, "orders-b to leave the frontend's discovery");

        var servedByHung = hung.Served;
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal("a", await client.GetStringAsync("/", Ct));
        }

        Assert.Equal(servedByHung, hung.Served);
        Assert.True(consul.HasService(hung.ServiceId), "a lapsed instance stays registered until DeregisterCriticalServiceAfter reaps it");
    }

    [Fact]
    public async Task Metadata_registered_by_AddMesh_round_trips_into_the_endpoint_features()
    {
        await using var consul = await ConsulDouble.StartAsync();
        await using var orders = await ConsulServiceApp.StartAsync(bed, consul, "orders", "a", new Dictionary<string, string?>
        {
            ["Mesh:Service:Version"] = "v2",
            ["Mesh:Service:Zone"] = "zone-a",
            ["Mesh:Discovery:Consul:Tags:0"] = "canary",
            ["Mesh:Discovery:Consul:Tags:1"] = "eu",
        });
        await Eventually.WaitAsync(() => consul.CheckStatus(orders.CheckId) == "passing", Deadline, "orders to register and pass");

        // What Consul holds: the mesh endpoint, tags, meta, a TTL check.
        using var consulClient = ConsulMeshApps.Client(consul);
        var entry = Assert.Single((await consulClient.GetHealthServiceAsync("orders", cancellationToken: Ct)).Value);
        Assert.Equal("orders-a", entry.Service.Id);
        Assert.Equal("127.0.0.1", entry.Service.Address);
        Assert.Equal(orders.Host.MeshEndPoint.Port, entry.Service.Port);
        Assert.Equal(["meshkit", "canary", "eu"], entry.Service.Tags);
        var spiffeId = $"spiffe://{ControlPlaneHost.TrustDomain}/ns/default/svc/orders";
        Assert.Equal(spiffeId, entry.Service.Meta["spiffe-id"]);
        Assert.Equal("v2", entry.Service.Meta["version"]);
        Assert.Equal("zone-a", entry.Service.Meta["zone"]);
        Assert.False(string.IsNullOrEmpty(entry.Service.Meta["meshkit-version"]));
        Assert.Contains(entry.Checks, c => c.Id == orders.CheckId && c.Status == "passing");

        // What a mesh caller sees: the same metadata as the endpoint's feature.
        await using var frontend = await StartCallerAsync(bed, consul);
        var endpoint = Assert.Single((await frontend.EndpointsAsync()).Endpoints);
        Assert.Equal($"127.0.0.1:{orders.Host.MeshEndPoint.Port}", endpoint.Key);
        Assert.Equal("v2", endpoint.Metadata.Version);
        Assert.Equal("zone-a", endpoint.Metadata.Zone);
        Assert.Equal(MeshEndpointMetadata.DefaultWeight, endpoint.Metadata.Weight);
        Assert.Equal(spiffeId, endpoint.Metadata.Get("spiffe-id"));
        Assert.Equal(entry.Service.Meta["meshkit-version"], endpoint.Metadata.Get("meshkit-version"));

        // And a plain Microsoft.Extensions.ServiceDiscovery client of the same app sees it too.
        var resolver = frontend.Services.GetRequiredService<ServiceEndpointResolver>();
        var resolved = Assert.Single((await resolver.GetEndpointsAsync("https://orders", Ct)).Endpoints);
        Assert.Equal("v2", resolved.Features.Get<IMeshEndpointMetadataFeature>()!.Metadata.Version);
    }

    [Fact]
    public async Task Weights_come_from_Meta_weight_or_else_from_Consul_weights_in_units_of_100()
    {
        await using var consul = await ConsulDouble.StartAsync();
        using var consulClient = ConsulMeshApps.Client(consul);
        await consulClient.RegisterServiceAsync(new ConsulServiceRegistration { Id = "orders-plain", Name = "orders", Address = "127.0.0.1", Port = 9001 }, Ct);
        await consulClient.RegisterServiceAsync(new ConsulServiceRegistration { Id = "orders-heavy", Name = "orders", Address = "127.0.0.1", Port = 9002, Weights = new ConsulServiceWeights { Passing = 3, Warning = 1 } }, Ct);
        await consulClient.RegisterServiceAsync(new ConsulServiceRegistration { Id = "orders-meta", Name = "orders", Address = "127.0.0.1", Port = 9003, Meta = new Dictionary<string, string> { ["weight"] = "50" } }, Ct);
        await consulClient.RegisterServiceAsync(new ConsulServiceRegistration { Id = "orders-bad", Name = "orders", Address = "127.0.0.1", Port = 9004, Meta = new Dictionary<string, string> { ["weight"] = "heavy" } }, Ct);

        await using var frontend = await StartCallerAsync(bed, consul);
        var weights = (await frontend.EndpointsAsync()).Endpoints.ToDictionary(e => e.Key, e => e.Metadata.Weight);

        Assert.Equal(100, weights["127.0.0.1:9001"]);
        Assert.Equal(300, weights["127.0.0.1:9002"]);
        Assert.Equal(50, weights["127.0.0.1:9003"]);
        Assert.Equal(100, weights["127.0.0.1:9004"]);
        Assert.Contains(frontend.Logs.Entries, e => e.EventId.Id == 3105 && e.Message.Contains("orders-bad", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_destination_without_a_passing_instance_fails_with_an_error_that_says_Consul_has_none()
    {
        await using var consul = await ConsulDouble.StartAsync();
        using var consulClient = ConsulMeshApps.Client(consul);

        // Registered, but its check has never passed: Consul leaves it out of ?passing.
        await consulClient.RegisterServiceAsync(new ConsulServiceRegistration { Id = "orders-sick", Name = "orders", Address = "127.0.0.1", Port = 9001, Check = new ConsulTtlCheck() }, Ct);
        await using var frontend = await StartCallerAsync(bed, consul);

        var error = await Assert.ThrowsAsync<MeshCallException>(() => frontend.MeshClient().GetStringAsync("/", Ct));
        Assert.Equal("no_endpoints", error.Reason);
        Assert.Contains("mesh destination 'orders'", error.Message, StringComparison.Ordinal);
        Assert.Contains($"Consul at {consul.Address} has no passing instance of service 'orders'", error.Message, StringComparison.Ordinal);
        Assert.IsType<MeshDiscoveryException>(error.InnerException);
        Assert.Contains(frontend.Logs.Entries, e => e.EventId.Id == 3102 && e.Message.Contains("orders", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_orders_instance_in_Consul_that_serves_evils_certificate_is_refused_and_evil_gets_nothing()
    {
        await using var consul = await ConsulDouble.StartAsync();
        var reached = 0;
        await using var evil = await MeshAppHost.StartAsync(bed.ControlPlane, "evil", MeshTestBed.Token,
            map: app => app.Map("/{**path}", () =>
            {
                Interlocked.Increment(ref reached);
                return "stolen";
            }));

        // Anyone who can write to Consul can list an "orders" instance, with meta that claims orders' identity.
        using var consulClient = ConsulMeshApps.Client(consul);
        await consulClient.RegisterServiceAsync(new ConsulServiceRegistration
        {
            Id = "orders-impostor",
            Name = "orders",
            Address = "127.0.0.1",
            Port = evil.MeshEndPoint.Port,
            Meta = new Dictionary<string, string> { ["spiffe-id"] = $"spiffe://{ControlPlaneHost.TrustDomain}/ns/default/svc/orders", ["version"] = "v1" },
        }, Ct);
        await using var frontend = await StartCallerAsync(bed, consul);
        Assert.Equal($"127.0.0.1:{evil.MeshEndPoint.Port}", Assert.Single((await frontend.EndpointsAsync()).Endpoints).Key);

        await Assert.ThrowsAnyAsync<HttpRequestException>(() => frontend.MeshClient().PostAsync("/api/orders", new StringContent("card=4111"), Ct));

        Assert.Equal(0, Volatile.Read(ref reached));
        Assert.True(frontend.Metrics.Sum("mesh.client.handshake.refusals", "mesh.reason", "unexpected_identity") >= 1);
        Assert.Contains(frontend.Logs.Entries, e => e.EventId.Id == 4001 && e.Message.Contains("svc/evil", StringComparison.Ordinal));
    }
}
