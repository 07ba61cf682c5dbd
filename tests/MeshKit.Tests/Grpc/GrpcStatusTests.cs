using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using Grpc.Core;
using MeshKit.Balancing;
using MeshKit.Client;
using MeshKit.Transport;
using MeshKit.Testing;
using MeshKit.Tests.Grpc.Proto;
using MeshKit.Tests.Identity;
using MeshKit.Tests.Traffic;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Tests.Grpc;

/// <summary>
/// MeshKit reads the grpc-status of Trailers-Only answers: UNAVAILABLE counts against the endpoint, application statuses
/// do not, and the logical span and golden metrics carry the code.
/// </summary>
[Trait("Area", "Grpc")]
public sealed class GrpcStatusTests(MeshTestBed bed) : IClassFixture<MeshTestBed>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // Retries off, so every UNAVAILABLE reaches the caller and the counts below are the endpoint's own.
    private static Dictionary<string, string?> Ejecting(int consecutiveFailures) => new()
    {
        ["Mesh:Policy:Destinations:inventory:Retry:MaxRetries"] = "0",
        ["Mesh:Policy:Destinations:inventory:LoadBalancer"] = "RoundRobin",
        ["Mesh:Policy:Destinations:inventory:OutlierDetection:ConsecutiveFailures"] = consecutiveFailures.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Mesh:Policy:Destinations:inventory:OutlierDetection:BaseEjectionTime"] = "00:01:00",
    };

    [Fact]
    public async Task An_endpoint_answering_UNAVAILABLE_repeatedly_is_ejected()
    {
        var good = new InventoryBehaviour();
        var bad = new InventoryBehaviour { Status = StatusCode.Unavailable };
        await using var one = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(good));
        await using var two = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(bad));
        await using var caller = await InventoryCaller.StartAsync(bed, [one, two], Ejecting(2));
        var client = caller.Services.GetRequiredService<Inventory.InventoryClient>();

        var unavailable = await CallAsync(client, 20);

        Assert.Equal(2, unavailable[StatusCode.Unavailable]);
        Assert.Equal(2, bad.Served);
        AssertEjectedOnce(caller, two);
        Assert.Equal(2, RequestsWithStatus(caller, 14));
    }

    [Fact]
    public async Task An_endpoint_ending_streams_with_UNAVAILABLE_in_the_trailers_is_ejected_and_the_status_is_recorded()
    {
        var good = new InventoryBehaviour();
        var bad = new InventoryBehaviour { StreamFailAt = 1 };
        await using var one = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(good));
        await using var two = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(bad));
        await using var caller = await InventoryCaller.StartAsync(bed, [one, two], Ejecting(2));
        var client = caller.Services.GetRequiredService<Inventory.InventoryClient>();

        // The bad endpoint sends one message, then UNAVAILABLE in the trailers: too late to retry, not too late to count.
        var failed = 0;
        for (var i = 0; i < 10; i++)
        {
            using var call = client.Watch(new WatchRequest { Count = 3, IntervalMs = 1 }, cancellationToken: Ct);
            try
            {
                await foreach (var _ in call.ResponseStream.ReadAllAsync(Ct))
                {
                }
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable)
            {
                failed++;
            }
        }

        Assert.Equal(2, failed);
        Assert.Equal(2, bad.Served);
        AssertEjectedOnce(caller, two);
        Assert.Equal(2, RequestsWithStatus(caller, 14));
        Assert.Equal(8, RequestsWithStatus(caller, 0));
    }

    [Fact]
    public async Task A_successful_unary_call_records_status_OK_read_from_its_trailers()
    {
        var behaviour = new InventoryBehaviour();
        await using var inventory = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(behaviour));
        await using var caller = await InventoryCaller.StartAsync(bed, [inventory]);
        var client = caller.Services.GetRequiredService<Inventory.InventoryClient>();

        for (var i = 0; i < 3; i++)
        {
            await client.ReserveAsync(new ReserveRequest { Sku = "apple", Quantity = 1 }, cancellationToken: Ct);
        }

        // The status comes in the trailers, after the reply: recorded when the gRPC client has read (or released) the body.
        await Eventually.WaitAsync(
            () => RequestsWithStatus(caller, 0) == 3,
            TimeSpan.FromSeconds(5),
            "three requests recorded with rpc.grpc.status_code 0");
    }

    [Fact]
    public async Task An_endpoint_answering_NOT_FOUND_is_not_ejected()
    {
        var good = new InventoryBehaviour();
        var missing = new InventoryBehaviour { Status = StatusCode.NotFound };
        await using var one = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(good));
        await using var two = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(missing));
        await using var caller = await InventoryCaller.StartAsync(bed, [one, two], Ejecting(1));
        var client = caller.Services.GetRequiredService<Inventory.InventoryClient>();

        var statuses = await CallAsync(client, 20);

        // Round robin keeps sending it every other call: its answers are the application's, the endpoint is healthy.
        Assert.Equal(10, statuses[StatusCode.NotFound]);
        Assert.Equal(10, missing.Served);
        var states = caller.Services.GetRequiredService<EndpointStateRegistry>();
        Assert.DoesNotContain(("inventory", $"127.0.0.1:{two.Host.MeshEndPoint.Port}"), states.EjectedNow());
        Assert.Equal(0, caller.Metrics.Sum("mesh.client.ejections"));
    }

    [Fact]
    public async Task The_logical_span_and_the_golden_metrics_carry_the_grpc_status_code_of_a_Trailers_Only_answer()
    {
        var behaviour = new InventoryBehaviour { Status = StatusCode.NotFound };
        await using var inventory = await Upstream.StartGrpcAsync<TestInventory>(bed, "inventory", "v1", s => s.AddSingleton(behaviour));
        await using var caller = await InventoryCaller.StartAsync(bed, [inventory]);
        var endpoint = $"127.0.0.1:{inventory.Host.MeshEndPoint.Port}";
        var spans = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "MeshKit",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                // Other tests in this process call "inventory" too: ours are the logical spans that chose our endpoint.
                if (activity.Kind == ActivityKind.Internal && Equals(activity.GetTagItem("mesh.endpoint"), endpoint))
                {
                    spans.Enqueue(activity);
                }
            },
        };
        ActivitySource.AddActivityListener(listener);
        var client = caller.Services.GetRequiredService<Inventory.InventoryClient>();

        var error = await Assert.ThrowsAsync<RpcException>(() => client.ReserveAsync(new ReserveRequest { Sku = "pear" }, cancellationToken: Ct).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, error.StatusCode);

        var span = Assert.Single(spans);
        Assert.Equal(5, span.GetTagItem("rpc.grpc.status_code"));
        Assert.Equal("grpc", span.GetTagItem("rpc.system"));
        Assert.Equal(ActivityStatusCode.Error, span.Status);
        var request = Assert.Single(caller.Metrics.Points, p => p.Instrument == "mesh.client.requests" && p.Tags.ContainsKey("rpc.grpc.status_code"));
        Assert.Equal(5, request.Tags["rpc.grpc.status_code"]);
        Assert.Equal("2xx", request.Tags["http.response.status_class"]);
    }

    [Theory]
    [InlineData("application/grpc", "14", 14)]
    [InlineData("application/grpc+proto", "5", 5)]
    [InlineData("application/grpc; charset=utf-8", "0", 0)]
    [InlineData("application/grpc-web", "14", GrpcStatus.None)]
    [InlineData("application/json", "14", GrpcStatus.None)]
    [InlineData("application/grpc", null, GrpcStatus.None)]
    [InlineData("application/grpc", "unavailable", GrpcStatus.None)]
    public void The_status_is_read_only_from_a_Trailers_Only_grpc_answer(string contentType, string? status, int expected)
    {
        using var response = WireResponse(HttpStatusCode.OK, contentType, status);

        Assert.Equal(expected, GrpcStatus.Read(response));
    }

    [Fact]
    public void Reading_the_status_of_a_response_that_is_not_grpc_allocates_nothing()
    {
        using var json = WireResponse(HttpStatusCode.OK, "application/json", null);
        using var grpc = WireResponse(HttpStatusCode.OK, "application/grpc", "14");
        GrpcStatus.Read(json);
        GrpcStatus.Read(grpc);

        var before = GC.GetAllocatedBytesForCurrentThread();
        var sum = 0;
        for (var i = 0; i < 1000; i++)
        {
            sum += GrpcStatus.Read(json) + GrpcStatus.Read(grpc);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(1000 * (GrpcStatus.None + 14), sum);
    }

    /// <summary>A response as SocketsHttpHandler builds it from the wire: headers kept as raw strings, none parsed yet.</summary>
    private static HttpResponseMessage WireResponse(HttpStatusCode code, string contentType, string? grpcStatus)
    {
        var response = new HttpResponseMessage(code) { Content = new ByteArrayContent([]) };
        response.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        response.Headers.TryAddWithoutValidation("date", "Mon, 07 Dec 2026 01:00:00 GMT");
        if (grpcStatus is not null)
        {
            response.Headers.TryAddWithoutValidation("grpc-status", grpcStatus);
        }

        return response;
    }

    /// <summary>Asserts that <paramref name="upstream"/>'s endpoint is ejected now, and that it was the caller's one ejection.</summary>
    private static void AssertEjectedOnce(MeshAppHost caller, Upstream upstream)
    {
        var state = caller.Services.GetRequiredService<EndpointStateRegistry>().Find("inventory", $"127.0.0.1:{upstream.Host.MeshEndPoint.Port}");
        Assert.NotNull(state);
        Assert.True(state.IsEjected(caller.Services.GetRequiredService<TimeProvider>().GetTimestamp()));
        Assert.Equal(1, caller.Metrics.Sum("mesh.client.ejections"));
    }

    /// <summary>Counts the caller's <c>mesh.client.requests</c> points tagged with this gRPC status.</summary>
    private static int RequestsWithStatus(MeshAppHost caller, int status) =>
        caller.Metrics.Points.Count(p => p.Instrument == "mesh.client.requests" && Equals(p.Tags.GetValueOrDefault("rpc.grpc.status_code"), status));

    private static async Task<Dictionary<StatusCode, int>> CallAsync(Inventory.InventoryClient client, int count)
    {
        var statuses = new Dictionary<StatusCode, int> { [StatusCode.OK] = 0, [StatusCode.Unavailable] = 0, [StatusCode.NotFound] = 0 };
        for (var i = 0; i < count; i++)
        {
            try
            {
                await client.ReserveAsync(new ReserveRequest { Sku = "apple", Quantity = 1 }, cancellationToken: Ct);
                statuses[StatusCode.OK]++;
            }
            catch (RpcException ex)
            {
                statuses[ex.StatusCode] = statuses.GetValueOrDefault(ex.StatusCode) + 1;
            }
        }

        return statuses;
    }
}
