using Grpc.Core;
using MeshKit.Server;

namespace Shop.Inventory;

/// <summary>
/// <c>inventory.v1.Inventory</c> (Shared/Protos/inventory.proto) on inventory's mesh endpoint. Only orders may call it:
/// inventory's <c>Mesh:Authorization</c> names <c>/inventory.v1.Inventory/Reserve</c>, so a call from anyone else is
/// refused before it gets here. The caller's identity is the one the mesh's mTLS handshake validated.
/// </summary>
internal sealed class InventoryService(StockLedger ledger) : Protos.Inventory.InventoryBase
{
    public override Task<Protos.ReserveReply> Reserve(Protos.ReserveRequest request, ServerCallContext context)
    {
        // Present on the mesh endpoint only; the authorization rule already refused callers without a mesh identity.
        var caller = context.GetHttpContext().Features.Get<IMeshPeerFeature>()
            ?? throw new RpcException(new Status(StatusCode.PermissionDenied, "Reservations are made by mesh callers only."));

        // Application errors are gRPC statuses thrown before any response message (Trailers-Only): MeshKit's span of the
        // caller carries them, and counts them as answers of a healthy endpoint, not as its failures.
        if (request.OrderId.Length == 0)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "An order id is required."));
        }

        if (request.Quantity is < 1 or > StockLedger.MaxQuantity)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"A quantity of {request.Quantity} is outside 1 to {StockLedger.MaxQuantity}."));
        }

        var reserved = ledger.TryReserve(request.OrderId, new ReservationLine(request.Sku, request.Quantity), caller.SpiffeId.Value)
            ?? throw new RpcException(new Status(StatusCode.NotFound, $"Unknown product '{request.Sku}'."));
        return Task.FromResult(new Protos.ReserveReply
        {
            OrderId = reserved.OrderId,
            Sku = reserved.Sku,
            Quantity = reserved.Quantity,
            Remaining = reserved.Remaining,
            ReservedFor = reserved.ReservedFor,
        });
    }
}
