using Grpc.Core;
using MeshKit.Server;
using MeshKit.Tests.Grpc.Proto;

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

    internal void Count() => Interlocked.Increment(ref _served);
}

/// <summary>The gRPC service of the tests (inventory_test.proto), as Grpc.AspNetCore hosts it on the mesh endpoint.</summary>
public sealed class TestInventory(InventoryBehaviour behaviour) : Inventory.InventoryBase
{
    public override Task<ReserveReply> Reserve(ReserveRequest request, ServerCallContext context)
    {
        behaviour.Count();
        if (behaviour.Status != StatusCode.OK)
        {
            // Thrown before any response message: Grpc.AspNetCore answers Trailers-Only (grpc-status in the headers).
            throw new RpcException(new Status(behaviour.Status, $"test status for {request.Sku}"));
        }

        var peer = context.GetHttpContext().Features.Get<IMeshPeerFeature>();
        return Task.FromResult(new ReserveReply { Caller = peer?.SpiffeId.Value ?? "nobody", ServedBy = context.GetHttpContext().Connection.LocalPort.ToString(System.Globalization.CultureInfo.InvariantCulture) });
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

    public override async Task Watch(WatchRequest request, IServerStreamWriter<Tick> responseStream, ServerCallContext context)
    {
        behaviour.Count();
        for (var i = 0; i < request.Count; i++)
        {
            await responseStream.WriteAsync(new Tick { Index = i }, context.CancellationToken);
            await Task.Delay(request.IntervalMs, context.CancellationToken);
        }
    }
}
