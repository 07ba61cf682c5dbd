using System.Diagnostics;
using Grpc.Core;
using MeshKit.Testing;
using MeshKit.Tests.Grpc.Proto;
using MeshKit.Tests.Identity;
using MeshKit.Tests.Traffic;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Tests.Grpc;

/// <summary>gRPC clients from Grpc.Net.ClientFactory as mesh clients, against a Grpc.AspNetCore service on the mesh endpoint.</summary>
[Trait("Area", "Grpc")]
public sealed class GrpcClientTests(MeshTestBed bed) : IClassFixture<MeshTestBed>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_unary_call_from_AddMeshGrpcClient_reaches_the_server_with_the_callers_SPIFFE_identity()
    {
        var behaviour = new InventoryBehaviour();
        await using var inventory = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(behaviour));
        await using var caller = await InventoryCaller.StartAsync(bed, [inventory]);

        var client = caller.Services.GetRequiredService<Inventory.InventoryClient>();
        var reply = await client.ReserveAsync(new ReserveRequest { Sku = "apple", Quantity = 1 }, cancellationToken: Ct);

        Assert.Equal($"spiffe://{ControlPlaneHost.TrustDomain}/ns/default/svc/frontend", reply.Caller);
        Assert.Equal(1, behaviour.Served);
    }

    [Fact]
    public async Task AddGrpcClient_with_AddMesh_makes_a_mesh_client_that_chooses_an_endpoint_per_call()
    {
        var first = new InventoryBehaviour();
        var second = new InventoryBehaviour();
        await using var one = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(first));
        await using var two = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(second));
        await using var caller = await Caller.StartAsync(bed, "inventory", [one, two],
            new Dictionary<string, string?> { ["Mesh:Policy:Destinations:inventory:LoadBalancer"] = "RoundRobin" },
            services => services.AddGrpcClient<Inventory.InventoryClient>(o => o.Address = new("https://inventory")).AddMesh());

        var client = caller.Services.GetRequiredService<Inventory.InventoryClient>();
        for (var i = 0; i < 10; i++)
        {
            var reply = await client.ReserveAsync(new ReserveRequest { Sku = "apple", Quantity = 1 }, cancellationToken: Ct);
            Assert.Equal($"spiffe://{ControlPlaneHost.TrustDomain}/ns/default/svc/frontend", reply.Caller);
        }

        // One channel, one typed client, yet both endpoints served: the endpoint is chosen per call, not per connection.
        Assert.Equal(5, first.Served);
        Assert.Equal(5, second.Served);
    }

    /// <summary>
    /// A 7 s server stream with a 1 s attempt and a 2 s total timeout, on 5 s certificates: it runs past both timeouts, and
    /// past the renewal of both workloads' certificates and the expiry of the certificates its connection was made with.
    /// </summary>
    [Fact]
    public async Task A_server_stream_runs_past_the_timeouts_and_past_the_expiry_of_its_connections_certificates()
    {
        var behaviour = new InventoryBehaviour();
        await using var inventory = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(behaviour));
        await using var caller = await StreamingCallerAsync(inventory);
        var client = caller.Services.GetRequiredService<Inventory.InventoryClient>();
        var identity = caller.Services.GetRequiredService<MeshKit.Identity.WorkloadIdentitySource>();
        var first = identity.GetValid();

        // 14 ticks 500 ms apart: about 7 s, past the 5 s lifetime of the certificate the connection was made with.
        var watch = Stopwatch.StartNew();
        using var call = client.Watch(new WatchRequest { Count = 14, IntervalMs = 500 }, cancellationToken: Ct);
        var ticks = new List<int>();
        await foreach (var tick in call.ResponseStream.ReadAllAsync(Ct))
        {
            ticks.Add(tick.Index);
        }

        Assert.Equal(Enumerable.Range(0, 14), ticks);
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
        Assert.True(watch.Elapsed > TimeSpan.FromSeconds(6), $"the stream lasted {watch.Elapsed}");
        Assert.True(DateTimeOffset.UtcNow > first.NotAfter, $"the first certificate expires at {first.NotAfter:O}");
        Assert.NotEqual(first.Certificate.Thumbprint, identity.GetValid().Certificate.Thumbprint);
    }

    [Fact]
    public async Task A_client_stream_whose_server_sends_its_headers_first_runs_past_the_attempt_timeout_and_the_total_timeout()
    {
        var behaviour = new InventoryBehaviour { HeadersFirst = true };
        await using var inventory = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(behaviour));
        await using var caller = await StreamingCallerAsync(inventory);
        var (call, watch) = await StreamEightTicksAsync(caller.Services.GetRequiredService<Inventory.InventoryClient>());
        using (call)
        {
            var reply = await call.ResponseAsync;

            Assert.Equal(8, reply.Count);
            Assert.True(watch.Elapsed > TimeSpan.FromSeconds(3), $"the stream lasted {watch.Elapsed}");
        }
    }

    /// <summary>
    /// Grpc.AspNetCore sends no response headers on a client stream until it has read the whole stream. MeshKit's timeouts
    /// count from the end of the request body (as Envoy's), so the stream is not cut while the caller is still writing.
    /// </summary>
    [Fact]
    public async Task A_client_stream_whose_server_sends_no_headers_before_its_end_runs_past_the_attempt_timeout_and_the_total_timeout()
    {
        var behaviour = new InventoryBehaviour { HeadersFirst = false };
        await using var inventory = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(behaviour));
        await using var caller = await StreamingCallerAsync(inventory);
        var identity = caller.Services.GetRequiredService<MeshKit.Identity.WorkloadIdentitySource>();
        var first = identity.GetValid().Certificate.Thumbprint;
        var (call, watch) = await StreamEightTicksAsync(caller.Services.GetRequiredService<Inventory.InventoryClient>());
        using (call)
        {
            var reply = await call.ResponseAsync;

            Assert.Equal(8, reply.Count);
            Assert.True(watch.Elapsed > TimeSpan.FromSeconds(3), $"the stream lasted {watch.Elapsed}");

            // 5 s certificates renewed at 35 % of their life: the caller renewed while it was streaming.
            Assert.NotEqual(first, identity.GetValid().Certificate.Thumbprint);
        }
    }

    [Fact]
    public async Task A_bidirectional_stream_runs_past_the_attempt_timeout_and_the_total_timeout()
    {
        var behaviour = new InventoryBehaviour();
        await using var inventory = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(behaviour));
        await using var caller = await StreamingCallerAsync(inventory);
        var client = caller.Services.GetRequiredService<Inventory.InventoryClient>();

        var watch = Stopwatch.StartNew();
        using var call = client.Echo(cancellationToken: Ct);
        var echoed = new List<int>();
        for (var i = 0; i < 8; i++)
        {
            await call.RequestStream.WriteAsync(new Tick { Index = i }, Ct);
            Assert.True(await call.ResponseStream.MoveNext(Ct));
            echoed.Add(call.ResponseStream.Current.Index);
            await Task.Delay(500, Ct);
        }

        await call.RequestStream.CompleteAsync();
        Assert.False(await call.ResponseStream.MoveNext(Ct));

        Assert.Equal([0, 1, 2, 3, 4, 5, 6, 7], echoed);
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
        Assert.True(watch.Elapsed > TimeSpan.FromSeconds(3), $"the stream lasted {watch.Elapsed}");
    }

    /// <summary>
    /// A CA rotation in three steps (a new root trusted, issuance switched, the old root removed) while a bidirectional
    /// stream runs: the stream goes on on its connection, and a new call after the rotation works on the new root.
    /// </summary>
    [Fact]
    public async Task A_bidirectional_stream_survives_a_CA_rotation_in_three_steps()
    {
        var own = new MeshTestBed();
        await own.InitializeAsync();
        try
        {
            var behaviour = new InventoryBehaviour();
            await using var inventory = await Upstream.StartGrpcAsync<TestInventory>(own, "inventory", "v1", s => s.AddSingleton(behaviour));
            await using var caller = await InventoryCaller.StartAsync(own, [inventory]);
            var client = caller.Services.GetRequiredService<Inventory.InventoryClient>();

            using var call = client.Echo(cancellationToken: Ct);
            var echoed = new List<int>();
            async Task EchoAsync(int index)
            {
                await call.RequestStream.WriteAsync(new Tick { Index = index }, Ct);
                Assert.True(await call.ResponseStream.MoveNext(Ct));
                echoed.Add(call.ResponseStream.Current.Index);
            }

            await EchoAsync(0);
            var rotating = RestartAfterRotationTests.RotateInThreeStepsAsync(own.ControlPlane, [inventory.Host, caller], Ct);
            var next = 1;
            while (!rotating.IsCompleted)
            {
                await EchoAsync(next++);
                await Task.WhenAny(rotating, Task.Delay(200, Ct));
            }

            await rotating;
            await EchoAsync(next++);
            await call.RequestStream.CompleteAsync();
            Assert.False(await call.ResponseStream.MoveNext(Ct));

            Assert.Equal(Enumerable.Range(0, next), echoed);
            Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
            var reply = await client.ReserveAsync(new ReserveRequest { Sku = "apple", Quantity = 1 }, cancellationToken: Ct);
            Assert.Equal($"spiffe://{ControlPlaneHost.TrustDomain}/ns/default/svc/frontend", reply.Caller);
        }
        finally
        {
            await own.DisposeAsync();
        }
    }

    [Fact]
    public async Task With_an_idle_timeout_a_stream_that_keeps_moving_lives_on_and_one_that_stalls_is_ended_naming_the_setting()
    {
        var behaviour = new InventoryBehaviour();
        await using var inventory = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(behaviour));
        await using var caller = await StreamingCallerAsync(inventory, idleTimeout: "00:00:02");
        var client = caller.Services.GetRequiredService<Inventory.InventoryClient>();

        // A tick every 250 ms for about 3 s: never idle for 2 s (a margin a loaded machine's late tick stays within), and
        // past both the attempt and the total timeout.
        using (var moving = client.Watch(new WatchRequest { Count = 12, IntervalMs = 250 }, cancellationToken: Ct))
        {
            Assert.Equal(12, (await moving.ResponseStream.ReadAllAsync(Ct).ToListAsync(Ct)).Count);
        }

        // A tick, then 8 s of silence: ended after about 2 s of it. Without the idle timeout the second tick would come
        // and the stream end well; the silence is long so that a loaded machine's late timer cannot be mistaken for that.
        using var stalled = client.Watch(new WatchRequest { Count = 2, IntervalMs = 8000 }, cancellationToken: Ct);
        var ticks = 0;
        var sinceFirstTick = new Stopwatch();
        var error = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var _ in stalled.ResponseStream.ReadAllAsync(Ct))
            {
                ticks++;
                sinceFirstTick.Start();
            }
        });

        Assert.Equal(1, ticks);
        Assert.Contains("Mesh:Policy:Destinations:inventory:IdleTimeout", error.ToString(), StringComparison.Ordinal);
        Assert.True(sinceFirstTick.Elapsed < TimeSpan.FromSeconds(6), $"the stalled stream lasted {sinceFirstTick.Elapsed} after its tick");
    }

    /// <summary>A caller of <paramref name="inventory"/> with a 1 s attempt timeout and a 2 s total timeout (and an idle timeout, if given).</summary>
    private Task<MeshAppHost> StreamingCallerAsync(Upstream inventory, string? idleTimeout = null) =>
        InventoryCaller.StartAsync(bed, [inventory],
            new Dictionary<string, string?>
            {
                ["Mesh:Policy:Destinations:inventory:AttemptTimeout"] = "00:00:01",
                ["Mesh:Policy:Destinations:inventory:Timeout"] = "00:00:02",
                ["Mesh:Policy:Destinations:inventory:IdleTimeout"] = idleTimeout,
            });

    /// <summary>Streams 8 ticks 500 ms apart (about 4 s); stops writing once the call has ended.</summary>
    private static async Task<(AsyncClientStreamingCall<Tick, CountReply> Call, Stopwatch Watch)> StreamEightTicksAsync(Inventory.InventoryClient client)
    {
        var watch = Stopwatch.StartNew();
        var call = client.Count(cancellationToken: Ct);
        try
        {
            for (var i = 0; i < 8 && !call.ResponseAsync.IsCompleted; i++)
            {
                await call.RequestStream.WriteAsync(new Tick { Index = i }, Ct);
                await Task.WhenAny(call.ResponseAsync, Task.Delay(500, Ct));
            }

            if (!call.ResponseAsync.IsCompleted)
            {
                await call.RequestStream.CompleteAsync();
            }
        }
        catch (RpcException)
        {
            // Cut while writing: the call's status says why.
        }
        catch (InvalidOperationException)
        {
            // Written after the call ended.
        }

        return (call, watch);
    }
}
