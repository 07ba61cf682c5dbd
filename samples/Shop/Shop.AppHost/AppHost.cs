var builder = DistributedApplication.CreateBuilder(args);

// The MeshKit control service: certificate authority, certificates, policy. The mesh's development root CA is made once
// and kept in .meshkit/ next to this project; every run generates fresh join tokens.
var mesh = builder.AddMeshControlPlane<Projects.MeshKit_ControlPlane>("mesh");

var inventory = builder.AddProject<Projects.Shop_Inventory>("inventory")
    .WithHttpEndpoint(name: "http")
    .WithMesh(mesh, service: "inventory", version: "v1")
    .WithHttpHealthCheck("/health");

// One project, two resources: the same code runs as orders v1 and as the v2 canary, told apart by version metadata.
var ordersV1 = AddOrders("orders-v1", "v1");
var ordersV2 = AddOrders("orders-v2", "v2");

// The shop's web page is at http://localhost:5180 (the "http" endpoint comes from Shop.Frontend's launch profile).
// The background traffic generator is on unless the AppHost is started with --Shop:TrafficGenerator:Enabled=false.
builder.AddProject<Projects.Shop_Frontend>("frontend")
    .WithExternalHttpEndpoints()
    .WithMesh(mesh, service: "frontend")
    .WithEnvironment("Shop__TrafficGenerator__Enabled", builder.Configuration["Shop:TrafficGenerator:Enabled"] ?? "true")
    .WithReferenceRelationship(ordersV1)
    .WithReferenceRelationship(ordersV2)
    .WithHttpHealthCheck("/health");

// Every service exports its spans to the dashboard through OpenTelemetry's batch processor, whose queue holds 2,048 spans
// by default and drops the rest. A burst (the end-to-end tests place 2,000 orders in seconds) overflows it, so the
// services get a bigger queue and larger batches.
foreach (var service in builder.Resources.OfType<ProjectResource>().Where(r => r.Name != mesh.Resource.Name))
{
    builder.CreateResourceBuilder(service)
        .WithEnvironment("OTEL_BSP_MAX_QUEUE_SIZE", "65536")
        .WithEnvironment("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2048");
}

builder.Build().Run();

IResourceBuilder<ProjectResource> AddOrders(string name, string version) =>
    builder.AddProject<Projects.Shop_Orders>(name)
        .WithHttpEndpoint(name: "http")
        .WithMesh(mesh, service: "orders", version: version)
        .WithReferenceRelationship(inventory)
        .WithHttpHealthCheck("/health");
