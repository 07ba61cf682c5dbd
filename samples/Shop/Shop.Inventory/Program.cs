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
builder.Services.AddGrpc();

builder.Services.AddShopRunTag();

var app = builder.Build();
app.MapDefaultEndpoints();

// Reserve stock for an order: the gRPC service inventory.v1.Inventory (Reserve), served on the mesh endpoint next to the
// HTTP API. Idempotent per order id. Mesh:Authorization lets only orders call it.
app.MapGrpcService<InventoryService>();

app.MapGet("/api/inventory/{sku}", (string sku, StockLedger ledger) =>
    ledger.TryGet(sku, out var stock) ? Results.Ok(new { sku, stock }) : Results.NotFound());

app.MapMeshRefusalDemo();
app.Run();
