using System.Collections.Concurrent;

namespace Shop.Inventory;

/// <summary>What an order wants set aside.</summary>
/// <param name="Sku">The product.</param>
/// <param name="Quantity">How many.</param>
internal sealed record ReservationLine(string Sku, int Quantity);

/// <summary>A reservation made.</summary>
/// <param name="OrderId">The order.</param>
/// <param name="Sku">The product.</param>
/// <param name="Quantity">How many were set aside.</param>
/// <param name="Remaining">Stock left afterwards.</param>
/// <param name="ReservedFor">The SPIFFE ID of the caller that made the reservation.</param>
internal sealed record ReservationResult(string OrderId, string Sku, int Quantity, int Remaining, string ReservedFor);

/// <summary>
/// The shop's stock, in memory. Reservations are idempotent per order id (a retried call reserves once), and a delivery
/// tops a product up when it runs low, so the demo never runs dry.
/// </summary>
internal sealed class StockLedger
{
    /// <summary>The most one reservation may set aside.</summary>
    public const int MaxQuantity = 20;

    private const int Delivery = 500;
    private const int RememberedReservations = 10_000;
    private readonly ConcurrentDictionary<string, ReservationResult> _reservations = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _stock = new(StringComparer.Ordinal)
    {
        ["espresso-beans"] = Delivery,
        ["oat-milk"] = Delivery,
        ["paper-cups"] = Delivery,
        ["croissant"] = Delivery,
    };

    public bool TryGet(string sku, out int stock) => _stock.TryGetValue(sku, out stock);

    /// <summary>Reserves a line for an order, or answers null for an unknown product or a quantity outside 1 to <see cref="MaxQuantity"/>.</summary>
    public ReservationResult? TryReserve(string orderId, ReservationLine line, string reservedFor)
    {
        if (line.Quantity is < 1 or > MaxQuantity || !_stock.ContainsKey(line.Sku))
        {
            return null;
        }

        if (_reservations.TryGetValue(orderId, out var earlier))
        {
            return earlier;
        }

        if (_reservations.Count >= RememberedReservations)
        {
            _reservations.Clear();
        }

        var remaining = _stock.AddOrUpdate(line.Sku, Delivery, (_, current) =>
            current >= line.Quantity ? current - line.Quantity : current + Delivery - line.Quantity);
        return _reservations.GetOrAdd(orderId, new ReservationResult(orderId, line.Sku, line.Quantity, remaining, reservedFor));
    }
}
