using Grpc.Core;
using MeshKit.Server;
using MeshKit.Testing;
using MeshKit.Tests.Grpc.Proto;
using MeshKit.Tests.Identity;
using MeshKit.Tests.Traffic;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Tests.Grpc;

/// <summary>What one instance of the test inventory service does: the status it answers with, and what it has served.</summary>
public sealed class InventoryBehaviour
{
    private int _served;

    /// <summary>Gets or sets the status every unary call ends with before any message (a Trailers-Only response when not OK).</summary>
    public StatusCode Status { get; set; } = StatusCode.OK;

    public int Served => Volatile.Read(ref _served);

    /// <summary>Gets or sets whether a client-streaming call sends its response headers before reading the stream.</summary>
    public bool HeadersFirst { get; set; }

    /// <summary>Gets or sets how many first unary calls end with <see cref="FirstStatus"/> before the others are served.</summary>
    public int FailFirst { get; set; }

    /// <summary>Gets or sets the status the first <see cref="FailFirst"/> calls end with.</summary>
    public StatusCode FirstStatus { get; set; } = StatusCode.Unavailable;

    /// <summary>Gets or sets, when above 0, after how many messages every server stream ends with UNAVAILABLE (in the trailers).</summary>
    public int StreamFailAt { get; set; }

    /// <summary>Gets or sets how long a unary call waits before it answers.</summary>
    public TimeSpan Delay { get; set; }

    /// <summary>Gets the <c>grpc-timeout</c> header of the last unary call, if any.</summary>
    public string? LastGrpcTimeout { get; private set; }

    /// <summary>Gets the deadline MeshKit set for calls made while serving the last unary call (MeshDeadline.Remaining).</summary>
    public TimeSpan? LastMeshDeadline { get; private set; }

    internal int Count() => Interlocked.Increment(ref _served);

    /// <summary>Gets the mesh authorization decision the last unary call was served under (<c>allow:rule</c>).</summary>
    public string? LastDecision { get; private set; }

    internal void Saw(ServerCallContext context)
    {
        var decision = context.GetHttpContext().Features.Get<MeshKit.Authorization.IMeshAuthorizationFeature>()?.Decision;
        LastDecision = decision is { } d ? $"{(d.Allowed ? "allow" : "deny")}:{d.RuleName}" : null;
        LastGrpcTimeout = context.GetHttpContext().Request.Headers["grpc-timeout"].FirstOrDefault();
        LastMeshDeadline = MeshKit.Deadlines.MeshDeadline.Remaining;
    }
}

/// <summary>The gRPC service of the tests (inventory_test.proto), as Grpc.AspNetCore hosts it on the mesh endpoint.</summary>
public sealed class TestInventory(InventoryBehaviour behaviour) : Inventory.InventoryBase
{
    public override async Task<ReserveReply> Reserve(ReserveRequest request, ServerCallContext context)
    {
        var served = behaviour.Count();
        behaviour.Saw(context);
        if (served <= behaviour.FailFirst)
        {
            throw new RpcException(new Status(behaviour.FirstStatus, $"test status for call {served}"));
        }

        if (behaviour.Delay > TimeSpan.Zero)
        {
            await Task.Delay(behaviour.Delay, context.CancellationToken);
        }

        if (behaviour.Status != StatusCode.OK)
        {
            // Thrown before any response message: Grpc.AspNetCore answers Trailers-Only (grpc-status in the headers).
            throw new RpcException(new Status(behaviour.Status, $"test status for {request.Sku}"));
        }

        var peer = context.GetHttpContext().Features.Get<IMeshPeerFeature>();
        return new ReserveReply { Caller = peer?.SpiffeId.Value ?? "nobody", ServedBy = context.GetHttpContext().Connection.LocalPort.ToString(System.Globalization.CultureInfo.InvariantCulture) };
    }

    public override async Task<CountReply> Count(IAsyncStreamReader<Tick> requestStream, ServerCallContext context)
    {
        behaviour.Count();
        if (behaviour.HeadersFirst)
        {
            await context.WriteResponseHeadersAsync([]);
        }

        var count = 0;
        await foreach (var _ in requestStream.ReadAllAsync(context.CancellationToken))
        {
            count++;
        }

        return new CountReply { Count = count };
    }

    public override async Task Echo(IAsyncStreamReader<Tick> requestStream, IServerStreamWriter<Tick> responseStream, ServerCallContext context)
    {
        behaviour.Count();
        await foreach (var tick in requestStream.ReadAllAsync(context.CancellationToken))
        {
            await responseStream.WriteAsync(tick, context.CancellationToken);
        }
    }

    public override async Task Watch(WatchRequest request, IServerStreamWriter<Tick> responseStream, ServerCallContext context)
    {
        behaviour.Count();
        for (var i = 0; i < request.Count; i++)
        {
            if (i > 0 && (i == request.FailAt || i == behaviour.StreamFailAt))
            {
                // After a response message: the status goes in the trailers, and the call must not be retried.
                throw new RpcException(new Status(StatusCode.Unavailable, $"test status after {i} message(s)"));
            }

            await responseStream.WriteAsync(new Tick { Index = i }, context.CancellationToken);
            await Task.Delay(request.IntervalMs, context.CancellationToken);
        }
    }
}

/// <summary>A caller of the test inventory service: a mesh app with <c>AddMeshGrpcClient&lt;Inventory.InventoryClient&gt;("inventory")</c>.</summary>
public static class InventoryCaller
{
    public static Task<MeshAppHost> StartAsync(MeshTestBed bed, IEnumerable<Upstream> upstreams, IDictionary<string, string?>? policy = null) =>
        Caller.StartAsync(bed, "inventory", upstreams, policy, services => services.AddMeshGrpcClient<Inventory.InventoryClient>("inventory"));
}
