using Shop;
using Shop.Inventory;

var builder = WebApplication.CreateBuilder(args);

// The stock ServiceDefaults first: AddMesh() then sees its OpenTelemetry exporter and adds none.
builder.AddServiceDefaults();
builder.AddMesh();

// Consul, when the AppHost runs with --Consul:Address (MeshKit.Discovery.Consul); without the address it adds nothing.
builder.AddMeshConsulDiscovery();

// Only for the refusal demo: inventory may not call orders, and orders says so.
builder.Services.AddMeshClient("orders");
builder.Services.AddSingleton<StockLedger>();

builder.Services.AddShopRunTag();

var app = builder.Build();
app.MapDefaultEndpoints();

// Reserve stock for an order; idempotent per order id, so the mesh may retry it. Mesh:Authorization lets only orders do this.
app.MapPut("/api/inventory/reservations/{orderId}", (string orderId, ReservationLine line, StockLedger ledger) =>
    ledger.TryReserve(orderId, line) is { } reserved
        ? Results.Ok(reserved)
        : Results.Problem(statusCode: StatusCodes.Status422UnprocessableEntity, title: "Cannot reserve", detail: $"Unknown product '{line.Sku}' or a quantity outside 1 to 20."));

app.MapGet("/api/inventory/{sku}", (string sku, StockLedger ledger) =>
    ledger.TryGet(sku, out var stock) ? Results.Ok(new { sku, stock }) : Results.NotFound());

app.MapMeshRefusalDemo();
app.Run();
