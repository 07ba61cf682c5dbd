using System.Collections.Concurrent;
using System.Net.Http.Json;
using Shop;

namespace Shop.Frontend;

/// <summary>An order as the web page sends it.</summary>
/// <param name="Sku">The product.</param>
/// <param name="Quantity">How many.</param>
internal sealed record NewOrder(string Sku, int Quantity);

/// <summary>An order as orders placed it.</summary>
/// <param name="Id">The order id.</param>
/// <param name="Sku">The product.</param>
/// <param name="Quantity">How many.</param>
/// <param name="Version">The version of orders that placed it.</param>
/// <param name="RemainingStock">Stock left after the reservation.</param>
/// <param name="Note">What that version added.</param>
internal sealed record PlacedOrder(string Id, string Sku, int Quantity, string Version, int RemainingStock, string? Note);

/// <summary>The outcome of placing an order.</summary>
/// <param name="Order">The order, when placed.</param>
/// <param name="Status">The status to answer with otherwise.</param>
/// <param name="Error">Why it was not placed.</param>
internal sealed record PlacementResult(PlacedOrder? Order, int Status, string? Error);

/// <summary>Places orders by calling orders through the mesh, and remembers the last few for the page.</summary>
internal sealed class OrderPlacement(IHttpClientFactory clients, ILogger<OrderPlacement> logger)
{
    /// <summary>The tester's header that picks a subset of orders whatever the split says (Mesh:Policy:SubsetHeader).</summary>
    public const string SubsetHeader = "x-mesh-subset";

    private const int RecentCount = 20;
    private readonly ConcurrentQueue<PlacedOrder> _recent = new();

    public async Task<PlacementResult> PlaceAsync(NewOrder order, string? subset, string? run, CancellationToken cancellationToken)
    {
        // The id is chosen here so that placing is idempotent (PUT) and the mesh may retry it.
        var id = Guid.NewGuid().ToString("N")[..12];
        using var request = new HttpRequestMessage(HttpMethod.Put, $"/api/orders/{id}")
        {
            Content = JsonContent.Create(order),
        };
        if (subset is not null)
        {
            request.Headers.TryAddWithoutValidation(SubsetHeader, subset);
        }

        ShopRun.CopyTo(run, request);
        try
        {
            using var response = await clients.CreateClient("orders").SendAsync(request, cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                var body = await response.Content.ReadAsStringAsync(cancellationToken);
                return new PlacementResult(null, StatusCodes.Status502BadGateway, $"orders answered {(int)response.StatusCode}: {body}");
            }

            var placed = await response.Content.ReadFromJsonAsync<PlacedOrder>(cancellationToken);
            if (placed is null)
            {
                return new PlacementResult(null, StatusCodes.Status502BadGateway, "orders answered without an order.");
            }

            _recent.Enqueue(placed);
            while (_recent.Count > RecentCount && _recent.TryDequeue(out _))
            {
            }

            return new PlacementResult(placed, StatusCodes.Status200OK, null);
        }
        catch (HttpRequestException ex)
        {
            // MeshCallException (an HttpRequestException) says why the mesh could not make the call: no endpoints, timeout...
            logger.LogWarning(ex, "Placing an order through the mesh failed.");
            return new PlacementResult(null, StatusCodes.Status503ServiceUnavailable, ex.Message);
        }
    }

    public IReadOnlyList<PlacedOrder> Recent() => [.. _recent.Reverse()];
}
