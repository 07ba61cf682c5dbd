using Shop;
using Shop.Frontend;

var builder = WebApplication.CreateBuilder(args);

// The stock ServiceDefaults first: AddMesh() then sees its OpenTelemetry exporter and adds none, and replaces the
// standard resilience and service-discovery handlers on the mesh clients below.
builder.AddServiceDefaults();
builder.AddMesh();

// Consul, when the AppHost runs with --Consul:Address (MeshKit.Discovery.Consul); without the address it adds nothing.
builder.AddMeshConsulDiscovery();

// https://orders is the mesh destination "orders": 90 % to v1, 10 % to the v2 canary (Mesh:Policy in appsettings.json).
builder.Services.AddMeshClient("orders");

// Only for the refusal demo: frontend may not call inventory, and inventory says so.
builder.Services.AddMeshClient("inventory");

builder.Services.AddSingleton<OrderPlacement>();
builder.Services.AddOptions<TrafficGeneratorOptions>()
    .BindConfiguration(TrafficGeneratorOptions.SectionName)
    .Validate(o => o.RequestsPerSecond is > 0 and <= 50, "Shop:TrafficGenerator:RequestsPerSecond must be above 0 and at most 50.")
    .Validate(o => o.MaxRequests >= 0, "Shop:TrafficGenerator:MaxRequests must be 0 or more.")
    .ValidateOnStart();
builder.Services.AddHostedService<TrafficGenerator>();

builder.Services.AddShopRunTag();

var app = builder.Build();
app.MapDefaultEndpoints();

app.MapGet("/", () => Results.File("index.html", "text/html; charset=utf-8"));

// Place an order through the mesh. A tester's x-mesh-subset header (v1, v2) is passed on: it overrides the canary split.
app.MapPost("/api/orders", async (NewOrder order, OrderPlacement placement, HttpContext http) =>
{
    var subset = http.Request.Headers[OrderPlacement.SubsetHeader].ToString();
    var result = await placement.PlaceAsync(order, subset.Length > 0 ? subset : null, ShopRun.Of(http), http.RequestAborted);
    return result.Order is { } placed
        ? Results.Ok(placed)
        : Results.Problem(statusCode: result.Status, title: "The order could not be placed", detail: result.Error);
});

app.MapGet("/api/orders/recent", (OrderPlacement placement) => Results.Ok(placement.Recent()));

app.MapMeshRefusalDemo();
app.Run();
