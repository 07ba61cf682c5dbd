using OpenTelemetry.Trace;
using Shop;
using Shop.Orders;
using Shop.Protos;

var builder = WebApplication.CreateBuilder(args);

// The stock ServiceDefaults first: AddMesh() then sees its OpenTelemetry exporter and adds none.
builder.AddServiceDefaults();
builder.AddMesh();

// Consul, when the AppHost runs with --Consul:Address (MeshKit.Discovery.Consul); without the address it adds nothing.
builder.AddMeshConsulDiscovery();

// Orders reserves stock in inventory through the mesh with the gRPC client of inventory.v1.Inventory (MeshKit.Grpc):
// mTLS, discovery and an endpoint chosen per call, like any mesh client.
builder.Services.AddMeshGrpcClient<Inventory.InventoryClient>("inventory");

// The gRPC client starts an activity of its own (Grpc.Net.Client.GrpcOut, with grpc.method and grpc.status_code) around
// each call, whether traced or not; MeshKit's span of the call is its child. Exported, it links the trace; left out, the
// dashboard shows MeshKit's span under a parent it never received.
builder.Services.ConfigureOpenTelemetryTracerProvider(tracing => tracing.AddSource("Grpc.Net.Client"));

// Only for the refusal demo: orders tries inventory's HTTP API (allowed) and orders itself (refused).
builder.Services.AddMeshClient("inventory");
builder.Services.AddMeshClient("orders");
builder.Services.AddSingleton<OrderBook>();

builder.Services.AddShopRunTag();

var app = builder.Build();
app.MapDefaultEndpoints();

// A switchable fault for the canary demo (--Shop:OrdersV2:FailureRate=0.2 on the AppHost sets it on orders v2): that share of
// orders fails with a 500 before anything is reserved. 0, the default, turns it off.
var failureRate = app.Configuration.GetValue("Shop:FailureRate", 0.0);
if (failureRate is < 0 or > 1 || double.IsNaN(failureRate))
{
    throw new InvalidOperationException($"Shop:FailureRate is {failureRate}; use a share of orders from 0 to 1.");
}

// Place an order; idempotent per order id, so the mesh may retry it. Mesh:Authorization lets only frontend do this.
app.MapPut("/api/orders/{id}", async (string id, OrderLine line, OrderBook book, HttpContext http) =>
{
    if (failureRate > 0 && Random.Shared.NextDouble() < failureRate)
    {
        return Results.Problem(statusCode: 500, title: "Injected failure", detail: $"orders fails {failureRate:P0} of its orders (Shop:FailureRate).");
    }

    var placed = await book.PlaceAsync(id, line, ShopRun.Of(http), http.RequestAborted);
    return placed.Order is { } order
        ? Results.Ok(order)
        : Results.Problem(statusCode: placed.Status, title: "The order could not be placed", detail: placed.Error);
});

app.MapGet("/api/orders/{id}", (string id, OrderBook book) =>
    book.TryGet(id, out var order) ? Results.Ok(order) : Results.NotFound());

app.MapMeshRefusalDemo();
app.Run();
