using System.Collections.Concurrent;
using Grpc.Core;
using Grpc.Net.ClientFactory;
using Shop;
using Shop.Protos;

namespace Shop.Orders;

/// <summary>What the frontend asks for.</summary>
/// <param name="Sku">The product.</param>
/// <param name="Quantity">How many.</param>
internal sealed record OrderLine(string Sku, int Quantity);

/// <summary>A placed order, with the version of orders that placed it: the canary split made visible.</summary>
/// <param name="Id">The order id (chosen by the caller, so placing is idempotent).</param>
/// <param name="Sku">The product.</param>
/// <param name="Quantity">How many.</param>
/// <param name="Version">The version of orders that placed it (<c>v1</c> or the <c>v2</c> canary).</param>
/// <param name="RemainingStock">Stock left in inventory after the reservation.</param>
/// <param name="Note">What this version adds; v2 estimates when the order will be ready.</param>
internal sealed record Order(string Id, string Sku, int Quantity, string Version, int RemainingStock, string? Note);

/// <summary>The outcome of placing an order.</summary>
/// <param name="Order">The order, when placed.</param>
/// <param name="Status">The status to answer with otherwise.</param>
/// <param name="Error">Why it was not placed.</param>
internal sealed record Placement(Order? Order, int Status, string? Error);

/// <summary>Places orders: reserves stock in inventory through the mesh (gRPC, inventory.v1.Inventory/Reserve), then remembers the order.</summary>
internal sealed class OrderBook(GrpcClientFactory grpcClients, IConfiguration configuration)
{
    private const int RememberedOrders = 10_000;

    // AddMeshGrpcClient<Inventory.InventoryClient> registers the client under its type's name.
    private const string InventoryClientName = nameof(Inventory.InventoryClient);
    private readonly ConcurrentDictionary<string, Order> _orders = new(StringComparer.Ordinal);
    private readonly string _version = configuration["Mesh:Service:Version"] ?? "v1";

    public bool TryGet(string id, out Order? order) => _orders.TryGetValue(id, out order);

    public async Task<Placement> PlaceAsync(string id, OrderLine line, string? run, CancellationToken cancellationToken)
    {
        if (_orders.TryGetValue(id, out var earlier))
        {
            return new Placement(earlier, StatusCodes.Status200OK, null);
        }

        // The run tag travels as gRPC metadata, an HTTP/2 header like any other: inventory's server span gets it too.
        var headers = run is null ? null : new Metadata { { ShopRun.Header, run } };
        ReserveReply reservation;
        try
        {
            // A client per call from the factory (this book is a singleton); the mesh chooses inventory's endpoint per call.
            var inventory = grpcClients.CreateClient<Inventory.InventoryClient>(InventoryClientName);
            reservation = await inventory.ReserveAsync(
                new ReserveRequest { OrderId = id, Sku = line.Sku ?? string.Empty, Quantity = line.Quantity },
                headers,
                cancellationToken: cancellationToken);
        }
        catch (RpcException ex) when (!cancellationToken.IsCancellationRequested)
        {
            // NOT_FOUND, INVALID_ARGUMENT (inventory said no), or UNAVAILABLE, PERMISSION_DENIED... (the mesh or inventory
            // could not serve it): orders could not place the order because of its upstream, as with the HTTP call before.
            return new Placement(null, StatusCodes.Status502BadGateway, $"inventory answered {ex.StatusCode}: {ex.Status.Detail}");
        }

        var note = _version == "v2" ? $"v2 estimates it ready in {2 + (line.Quantity / 2)} minutes" : null;
        if (_orders.Count >= RememberedOrders)
        {
            _orders.Clear();
        }

        var order = _orders.GetOrAdd(id, new Order(id, line.Sku ?? string.Empty, line.Quantity, _version, reservation.Remaining, note));
        return new Placement(order, StatusCodes.Status200OK, null);
    }
}
