using System.Globalization;
using Grpc.Core;
using MeshKit.Deadlines;
using MeshKit.Testing;
using MeshKit.Tests.Grpc.Proto;
using MeshKit.Tests.Identity;
using MeshKit.Tests.Traffic;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Tests.Grpc;

/// <summary>
/// gRPC calls are retried by status when that is safe (Trailers-Only, the body kept), deadlines travel both ways as
/// <c>grpc-timeout</c>, and MeshKit's own refusals reach a gRPC caller as gRPC statuses that explain themselves.
/// </summary>
[Trait("Area", "Grpc")]
public sealed class GrpcRetryAndDeadlineTests(MeshTestBed bed) : IClassFixture<MeshTestBed>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static ReserveRequest Apple => new() { Sku = "apple", Quantity = 1 };

    [Fact]
    public async Task An_UNAVAILABLE_answered_before_any_message_is_retried_and_the_retry_says_why()
    {
        var behaviour = new InventoryBehaviour { FailFirst = 1 };
        await using var inventory = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(behaviour));
        await using var caller = await InventoryCaller.StartAsync(bed, [inventory]);
        var client = caller.Services.GetRequiredService<Inventory.InventoryClient>();

        var reply = await client.ReserveAsync(Apple, cancellationToken: Ct);

        Assert.Equal(2, behaviour.Served);
        Assert.NotEmpty(reply.Caller);
        Assert.Equal(1, caller.Metrics.Points.Count(p => p.Instrument == "mesh.client.retries" && Equals(p.Tags.GetValueOrDefault("mesh.retry.reason"), "grpc_unavailable")));
    }

    [Fact]
    public async Task A_status_the_policy_does_not_name_is_not_retried_and_a_named_one_is()
    {
        var behaviour = new InventoryBehaviour { FailFirst = 1, FirstStatus = StatusCode.NotFound };
        await using var inventory = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(behaviour));
        await using var caller = await InventoryCaller.StartAsync(bed, [inventory],
            new Dictionary<string, string?>
            {
                ["Mesh:Policy:Destinations:inventory:Retry:GrpcStatus:0"] = "RESOURCE_EXHAUSTED",
                ["Mesh:Policy:Destinations:inventory:Retry:GrpcStatus:1"] = "unavailable",
            });
        var client = caller.Services.GetRequiredService<Inventory.InventoryClient>();

        var error = await Assert.ThrowsAsync<RpcException>(() => client.ReserveAsync(Apple, cancellationToken: Ct).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, error.StatusCode);
        Assert.Equal(1, behaviour.Served);

        behaviour.FailFirst = 2;
        behaviour.FirstStatus = StatusCode.ResourceExhausted;
        await client.ReserveAsync(Apple, cancellationToken: Ct);
        Assert.Equal(3, behaviour.Served);
    }

    [Fact]
    public async Task A_stream_that_fails_after_a_response_message_is_not_retried()
    {
        var behaviour = new InventoryBehaviour();
        await using var inventory = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(behaviour));
        await using var caller = await InventoryCaller.StartAsync(bed, [inventory]);
        var client = caller.Services.GetRequiredService<Inventory.InventoryClient>();

        using var call = client.Watch(new WatchRequest { Count = 5, IntervalMs = 10, FailAt = 2 }, cancellationToken: Ct);
        var ticks = new List<int>();
        var error = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var tick in call.ResponseStream.ReadAllAsync(Ct))
            {
                ticks.Add(tick.Index);
            }
        });

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Equal([0, 1], ticks);
        Assert.Equal(1, behaviour.Served);
    }

    [Fact]
    public async Task A_call_whose_connection_is_refused_before_its_body_is_retried_on_another_endpoint()
    {
        var behaviour = new InventoryBehaviour();
        await using var good = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(behaviour));
        var gone = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(new InventoryBehaviour()));
        await using var caller = await InventoryCaller.StartAsync(bed, [gone, good],
            new Dictionary<string, string?> { ["Mesh:Policy:Destinations:inventory:LoadBalancer"] = "RoundRobin" });
        await gone.DisposeAsync();
        var client = caller.Services.GetRequiredService<Inventory.InventoryClient>();

        for (var i = 0; i < 4; i++)
        {
            await client.ReserveAsync(Apple, cancellationToken: Ct);
        }

        Assert.Equal(4, behaviour.Served);
    }

    [Fact]
    public async Task A_propagated_deadline_is_sent_on_as_grpc_timeout()
    {
        var behaviour = new InventoryBehaviour();
        await using var inventory = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(behaviour));
        await using var caller = await InventoryCaller.StartAsync(bed, [inventory]);
        var client = caller.Services.GetRequiredService<Inventory.InventoryClient>();

        // As while serving a request whose caller had 1.5 s left.
        MeshDeadline.SetFromHeader("1500", TimeProvider.System);
        await client.ReserveAsync(Apple, cancellationToken: Ct);

        Assert.NotNull(behaviour.LastGrpcTimeout);
        Assert.EndsWith("m", behaviour.LastGrpcTimeout, StringComparison.Ordinal);
        var sent = long.Parse(behaviour.LastGrpcTimeout.AsSpan(0, behaviour.LastGrpcTimeout.Length - 1), CultureInfo.InvariantCulture);
        Assert.InRange(sent, 1, 1500);
    }

    [Fact]
    public async Task The_callers_own_sooner_gRPC_deadline_is_kept_and_becomes_the_servers_mesh_deadline()
    {
        var behaviour = new InventoryBehaviour();
        await using var inventory = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(behaviour));
        await using var caller = await InventoryCaller.StartAsync(bed, [inventory]);
        var client = caller.Services.GetRequiredService<Inventory.InventoryClient>();

        MeshDeadline.SetFromHeader("20000", TimeProvider.System);
        await client.ReserveAsync(Apple, deadline: DateTime.UtcNow.AddSeconds(3), cancellationToken: Ct);

        // Grpc.Net.Client's own grpc-timeout (about 3 s) is sooner than the 20 s propagated, so it stays; the server takes
        // it as the deadline of the mesh calls it makes while serving (MeshKit's 30 s default timeout is later).
        Assert.NotNull(behaviour.LastGrpcTimeout);
        Assert.InRange(GrpcTimeout.Parse(behaviour.LastGrpcTimeout)!.Value, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(3));
        Assert.NotNull(behaviour.LastMeshDeadline);
        Assert.InRange(behaviour.LastMeshDeadline.Value, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(3));
    }

    [Fact]
    public async Task A_call_past_the_mesh_timeout_ends_as_DEADLINE_EXCEEDED_naming_the_setting()
    {
        var behaviour = new InventoryBehaviour { Delay = TimeSpan.FromSeconds(5) };
        await using var inventory = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(behaviour));
        await using var caller = await InventoryCaller.StartAsync(bed, [inventory],
            new Dictionary<string, string?>
            {
                ["Mesh:Policy:Destinations:inventory:Timeout"] = "00:00:01",
                ["Mesh:Policy:Destinations:inventory:Retry:MaxRetries"] = "0",
            });
        var client = caller.Services.GetRequiredService<Inventory.InventoryClient>();

        var error = await Assert.ThrowsAsync<RpcException>(() => client.ReserveAsync(Apple, cancellationToken: Ct).ResponseAsync);

        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
        Assert.Contains("Mesh:Policy:Destinations:inventory:Timeout", error.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(1, caller.Metrics.Points.Count(p => p.Instrument == "mesh.client.requests" && Equals(p.Tags.GetValueOrDefault("rpc.grpc.status_code"), 4) && Equals(p.Tags.GetValueOrDefault("mesh.outcome"), "timeout")));
    }

    [Fact]
    public async Task A_destination_that_discovery_does_not_know_ends_as_a_gRPC_status_naming_it()
    {
        await using var caller = await InventoryCaller.StartAsync(bed, [],
            new Dictionary<string, string?> { ["Mesh:Policy:Destinations:inventory:Timeout"] = "00:00:01" });
        var client = caller.Services.GetRequiredService<Inventory.InventoryClient>();

        var error = await Assert.ThrowsAsync<RpcException>(() => client.ReserveAsync(Apple, cancellationToken: Ct).ResponseAsync);

        // No endpoint (UNAVAILABLE) or discovery still waiting at the timeout (DEADLINE_EXCEEDED): either way MeshKit's
        // own explanation, not Grpc.Net.Client's "Error starting gRPC call" (INTERNAL).
        Assert.True(error.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded, error.ToString());
        Assert.Contains("inventory", error.Status.Detail, StringComparison.Ordinal);
    }
}
