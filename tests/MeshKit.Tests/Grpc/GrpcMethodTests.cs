using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Grpc.Core;
using MeshKit.Testing;
using MeshKit.Tests.Grpc.Proto;
using MeshKit.Tests.Identity;
using MeshKit.Tests.Traffic;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Tests.Grpc;

/// <summary>
/// Routes and authorization rules by gRPC method (<c>Match:Grpc</c>, <c>To:Grpc</c>), and mesh refusals of gRPC calls
/// answered in gRPC's terms so the caller's <see cref="RpcException"/> explains itself.
/// </summary>
[Trait("Area", "Grpc")]
public sealed class GrpcMethodTests(MeshTestBed bed) : IClassFixture<MeshTestBed>
{
    private const string Service = "inventory.test.v1.Inventory";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string FrontendId => $"spiffe://{ControlPlaneHost.TrustDomain}/ns/default/svc/frontend";

    [Fact]
    public async Task A_route_by_gRPC_method_sends_Reserve_to_v2_and_the_other_methods_of_the_service_to_v1()
    {
        var v1 = new InventoryBehaviour();
        var v2 = new InventoryBehaviour();
        await using var one = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(v1));
        await using var two = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v2", s => s.AddSingleton(v2));
        await using var caller = await InventoryCaller.StartAsync(bed, [one, two],
            new Dictionary<string, string?>
            {
                ["Mesh:Policy:Destinations:inventory:Routes:0:Name"] = "reserve-on-v2",
                ["Mesh:Policy:Destinations:inventory:Routes:0:Match:Grpc"] = $"{Service}/Reserve",
                ["Mesh:Policy:Destinations:inventory:Routes:0:Split:v2"] = "100",
                ["Mesh:Policy:Destinations:inventory:Routes:1:Name"] = "inventory-on-v1",
                ["Mesh:Policy:Destinations:inventory:Routes:1:Match:Grpc"] = Service,
                ["Mesh:Policy:Destinations:inventory:Routes:1:Split:v1"] = "100",
            });
        var client = caller.Services.GetRequiredService<Inventory.InventoryClient>();

        for (var i = 0; i < 5; i++)
        {
            var reply = await client.ReserveAsync(new ReserveRequest { Sku = "apple", Quantity = 1 }, cancellationToken: Ct);
            Assert.Equal(two.Host.MeshEndPoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), reply.ServedBy);
            using var watch = client.Watch(new WatchRequest { Count = 1 }, cancellationToken: Ct);
            Assert.Single(await watch.ResponseStream.ReadAllAsync(Ct).ToListAsync(Ct));
        }

        // Every Reserve went to v2 and every Watch (the rest of the service) to v1, whatever a split of all calls would do.
        Assert.Equal(5, v2.Served);
        Assert.Equal(5, v1.Served);
    }

    /// <summary>
    /// Grpc.AspNetCore maps catch-all "unimplemented" endpoints beside every method, valid candidates for every gRPC
    /// request; only the endpoint that runs records its decision (the catch-alls used to record a default deny each).
    /// </summary>
    [Fact]
    public async Task Under_a_default_deny_an_allowed_gRPC_call_records_its_allow_and_no_denial()
    {
        var behaviour = new InventoryBehaviour();
        var decisions = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using var inventory = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(behaviour),
            new Dictionary<string, string?>
            {
                ["Mesh:Authorization:DefaultAction"] = "Deny",
                ["Mesh:Authorization:Rules:0:Name"] = "frontend-uses-inventory",
                ["Mesh:Authorization:Rules:0:From:Services:0"] = "frontend",
                ["Mesh:Authorization:Rules:0:To:Grpc:0"] = $"{Service}/Reserve",
            });
        await using var caller = await InventoryCaller.StartAsync(bed, [inventory]);
        var client = caller.Services.GetRequiredService<Inventory.InventoryClient>();

        for (var i = 0; i < 3; i++)
        {
            await client.ReserveAsync(new ReserveRequest { Sku = "apple", Quantity = 1 }, cancellationToken: Ct);
            decisions.Enqueue(behaviour.LastDecision ?? "none");
        }

        Assert.Equal(3, behaviour.Served);
        Assert.Equal(["allow:frontend-uses-inventory", "allow:frontend-uses-inventory", "allow:frontend-uses-inventory"], decisions);
        Assert.Equal(0, inventory.Host.Metrics.Sum("mesh.server.authorization.denials"));
    }

    [Fact]
    public async Task An_authorization_rule_denies_one_gRPC_method_and_allows_another_to_the_same_caller_and_the_RpcException_names_the_rule()
    {
        var behaviour = new InventoryBehaviour();
        await using var inventory = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(behaviour),
            new Dictionary<string, string?>
            {
                ["Mesh:Authorization:DefaultAction"] = "Deny",
                ["Mesh:Authorization:Rules:0:Name"] = "frontend-may-not-reserve",
                ["Mesh:Authorization:Rules:0:Action"] = "Deny",
                ["Mesh:Authorization:Rules:0:From:Services:0"] = "frontend",
                ["Mesh:Authorization:Rules:0:To:Grpc:0"] = $"{Service}/Reserve",
                ["Mesh:Authorization:Rules:1:Name"] = "frontend-uses-inventory",
                ["Mesh:Authorization:Rules:1:From:Services:0"] = "frontend",
                ["Mesh:Authorization:Rules:1:To:Grpc:0"] = Service,
            });
        await using var caller = await InventoryCaller.StartAsync(bed, [inventory]);
        var client = caller.Services.GetRequiredService<Inventory.InventoryClient>();

        using (var watch = client.Watch(new WatchRequest { Count = 2 }, cancellationToken: Ct))
        {
            Assert.Equal(2, (await watch.ResponseStream.ReadAllAsync(Ct).ToListAsync(Ct)).Count);
        }

        var denied = await Assert.ThrowsAsync<RpcException>(() => client.ReserveAsync(new ReserveRequest { Sku = "apple", Quantity = 1 }, cancellationToken: Ct).ResponseAsync);

        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        Assert.Equal($"{FrontendId} is denied POST /{Service}/Reserve by rule 'frontend-may-not-reserve'.", denied.Status.Detail);
        Assert.Equal("mesh_authorization_denied", denied.Trailers.GetValue("x-mesh-reason"));
        Assert.Equal(1, behaviour.Served);
        Assert.True(inventory.Host.Metrics.Sum("mesh.server.authorization.denials", "mesh.authorization.rule", "frontend-may-not-reserve") >= 1);
    }

    [Fact]
    public async Task A_rate_limited_gRPC_call_fails_with_RESOURCE_EXHAUSTED_naming_the_rule_and_the_server_pushback()
    {
        var behaviour = new InventoryBehaviour();
        await using var inventory = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(behaviour),
            new Dictionary<string, string?>
            {
                ["Mesh:Authorization:Rules:0:Name"] = "frontend-once",
                ["Mesh:Authorization:Rules:0:From:Services:0"] = "frontend",
                ["Mesh:Authorization:Rules:0:To:Paths:0"] = $"/{Service}/*",
                ["Mesh:Authorization:Rules:0:RateLimit:PermitsPerSecond"] = "0.01",
            });
        await using var caller = await InventoryCaller.StartAsync(bed, [inventory]);
        var client = caller.Services.GetRequiredService<Inventory.InventoryClient>();

        await client.ReserveAsync(new ReserveRequest { Sku = "apple", Quantity = 1 }, cancellationToken: Ct);
        var limited = await Assert.ThrowsAsync<RpcException>(() => client.ReserveAsync(new ReserveRequest { Sku = "apple", Quantity = 1 }, cancellationToken: Ct).ResponseAsync);

        Assert.Equal(StatusCode.ResourceExhausted, limited.StatusCode);
        Assert.Equal($"{FrontendId} is over the rate limit of rule 'frontend-once' (0.01/s, burst 1).", limited.Status.Detail);
        Assert.Equal("mesh_rate_limited", limited.Trailers.GetValue("x-mesh-reason"));
        var pushback = long.Parse(limited.Trailers.GetValue("grpc-retry-pushback-ms")!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(pushback, 1, 100_000);
        Assert.Equal(1, behaviour.Served);
    }

    [Fact]
    public async Task A_gRPC_call_without_mesh_identity_is_refused_UNAUTHENTICATED_while_an_HTTP_request_still_gets_its_403()
    {
        await using var inventory = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(new InventoryBehaviour()),
            new Dictionary<string, string?>
            {
                ["Mesh:Authorization:Rules:0:Name"] = "frontend-uses-inventory",
                ["Mesh:Authorization:Rules:0:From:Services:0"] = "frontend",
                ["Mesh:Authorization:Rules:0:To:Grpc:0"] = Service,
            });

        // The public endpoint (plain HTTP/1.1, no client certificate): gRPC's framing on the wire, without a gRPC client.
        using var anonymous = new HttpClient { BaseAddress = inventory.Host.PublicAddress };
        using var grpc = await anonymous.SendAsync(Call($"/{Service}/Reserve", "application/grpc"), Ct);

        Assert.Equal(HttpStatusCode.OK, grpc.StatusCode);
        Assert.Equal("application/grpc", grpc.Content.Headers.ContentType?.MediaType);
        Assert.Equal("16", Header(grpc, "grpc-status"));
        Assert.Equal($"A caller without mesh identity is denied POST /{Service}/Reserve: no rule matches, and the default action is Deny.", Header(grpc, "grpc-message"));
        Assert.Equal("mesh_authorization_denied", Header(grpc, "x-mesh-reason"));
        Assert.Empty(await grpc.Content.ReadAsByteArrayAsync(Ct));

        // A path no endpoint serves, decided by its decoded path: the message is percent-encoded as gRPC asks (UTF-8).
        using var unrouted = await anonymous.SendAsync(Call("/caf%C3%A9", "application/grpc+proto"), Ct);
        Assert.Equal(HttpStatusCode.OK, unrouted.StatusCode);
        Assert.Equal("application/grpc+proto", unrouted.Content.Headers.ContentType?.MediaType);
        Assert.Equal("16", Header(unrouted, "grpc-status"));
        Assert.Contains("POST /caf%C3%A9: no rule matches", Header(unrouted, "grpc-message"), StringComparison.Ordinal);

        // Not gRPC: the HTTP answer as before.
        using var http = await anonymous.SendAsync(Call($"/{Service}/Reserve", "application/json"), Ct);
        Assert.Equal(HttpStatusCode.Forbidden, http.StatusCode);
        Assert.Equal("application/problem+json", http.Content.Headers.ContentType?.MediaType);
        Assert.False(http.Headers.Contains("grpc-status"));
        var problem = await http.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal("mesh_authorization_denied", problem.GetProperty("reason").GetString());
    }

    [Fact]
    public async Task A_gRPC_service_that_requires_another_mesh_caller_refuses_PERMISSION_DENIED_naming_the_callers_allowed()
    {
        var behaviour = new InventoryBehaviour();
        await using var inventory = await MeshAppHost.StartAsync(bed.ControlPlane, "inventory", MeshTestBed.Token,
            configureServices: services => services.AddGrpc().Services.AddSingleton(behaviour),
            map: app => app.MapGrpcService<TestInventory>().RequireMeshCaller("orders"));
        await using var caller = await MeshAppHost.StartAsync(bed.ControlPlane, "frontend", MeshTestBed.Token, meshEndpoint: false,
            settings: new Dictionary<string, string?>(inventory.AsStaticEndpoint("inventory")),
            configureServices: services => services.AddMeshGrpcClient<Inventory.InventoryClient>("inventory"));
        var client = caller.Services.GetRequiredService<Inventory.InventoryClient>();

        var denied = await Assert.ThrowsAsync<RpcException>(() => client.ReserveAsync(new ReserveRequest { Sku = "apple", Quantity = 1 }, cancellationToken: Ct).ResponseAsync);

        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        Assert.Equal($"{FrontendId} may not call this endpoint; allowed callers: orders.", denied.Status.Detail);
        Assert.Equal("mesh_caller_not_allowed", denied.Trailers.GetValue("x-mesh-reason"));
        Assert.Equal(0, behaviour.Served);
    }

    private static HttpRequestMessage Call(string path, string contentType)
    {
        var content = new ByteArrayContent(new byte[5]);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        return new HttpRequestMessage(HttpMethod.Post, path) { Content = content };
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? string.Join(",", values) : null;
}
