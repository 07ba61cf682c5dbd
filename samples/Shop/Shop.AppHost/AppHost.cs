using Shop.AppHost;

var builder = DistributedApplication.CreateBuilder(args);

// Consul, optional. None by default (static discovery between the services); an agent of your own with
// --Consul:Address=http://127.0.0.1:8500; or a development agent with its UI in a container with --Shop:Consul=container.
IResourceBuilder<ContainerResource>? consul = null;
switch (builder.Configuration["Shop:Consul"])
{
    case null or "":
        break;
    case "container" when !string.IsNullOrEmpty(builder.Configuration[MeshResourceBuilderExtensions.ConsulAddressKey]):
        return Refuse("--Shop:Consul=container and --Consul:Address both choose a Consul agent; keep one.");
    case "container" when !ContainerRuntime.IsAvailable(builder.Configuration, out var problem):
        return Refuse($"--Shop:Consul=container runs Consul in a container, but no container runtime answers here ({problem}). "
            + "Run a Consul agent yourself (consul agent -dev) and pass its address instead: --Consul:Address=http://127.0.0.1:8500 (docs/aspire.md, \"Consul\").");
    case "container":
        // A development agent (in-memory, one node, the UI on): the services register their mesh endpoints in it with TTL
        // checks, so the agent never has to reach them; they reach it through the published port.
        consul = builder.AddContainer("consul", ConsulImage.Name, ConsulImage.Tag)
            .WithArgs("agent", "-dev", "-client=0.0.0.0", "-ui")
            .WithHttpEndpoint(targetPort: 8500, name: "http")
            .WithUrlForEndpoint("http", url =>
            {
                url.Url = "/ui/";
                url.DisplayText = "Consul UI";
            })
            .WithHttpHealthCheck("/v1/status/leader", endpointName: "http");
        break;
    case var other:
        return Refuse($"Shop:Consul is '{other}'; the one value it takes is 'container' (or leave it out, or pass --Consul:Address=<url>).");
}

// The MeshKit control service: certificate authority, certificates, policy. The mesh's development root CA is made once
// and kept in .meshkit/ next to this project; every run generates fresh join tokens.
var mesh = builder.AddMeshControlPlane<Projects.MeshKit_ControlPlane>("mesh");

// An automated canary of orders v2 (docs/canary.md), when asked for: the control service moves frontend's split to v2 step
// by step on frontend's own figures, or rolls it back; --Shop:OrdersV2:FailureRate=0.2 makes v2 fail a fifth of its orders.
var canary = string.Equals(builder.Configuration[ShopCanary.EnabledKey], "true", StringComparison.OrdinalIgnoreCase);
if (canary)
{
    foreach (var (name, value) in ShopCanary.CentralPolicy(builder.Configuration))
    {
        mesh.WithEnvironment(name, value);
    }

    // Every run starts its canary afresh: central policy (the weights the analysis writes) and the canary's state live in
    // a folder of this run, not in .meshkit/ with the CA.
    mesh.WithEnvironment("ControlPlane__Policy__Directory", Directory.CreateTempSubdirectory("meshkit-shop-policy-").FullName);
}

var failureRate = ShopCanary.FailureRate(builder.Configuration, out var badRate);
if (badRate is not null)
{
    return Refuse(badRate);
}

var inventory = builder.AddProject<Projects.Shop_Inventory>("inventory")
    .WithHttpEndpoint(name: "http")
    .WithMesh(mesh, service: "inventory", version: "v1")
    .WithHttpHealthCheck("/health");

// One project, two resources: the same code runs as orders v1 and as the v2 canary, told apart by version metadata.
var ordersV1 = AddOrders("orders-v1", "v1");
var ordersV2 = AddOrders("orders-v2", "v2");
if (failureRate is not null)
{
    ordersV2.WithEnvironment("Shop__FailureRate", failureRate);
}

// The shop's web page is at http://localhost:5180 (the "http" endpoint comes from Shop.Frontend's launch profile).
// The background traffic generator is on unless the AppHost is started with --Shop:TrafficGenerator:Enabled=false.
builder.AddProject<Projects.Shop_Frontend>("frontend")
    .WithExternalHttpEndpoints()
    .WithMesh(mesh, service: "frontend")
    .WithEnvironment("Shop__TrafficGenerator__Enabled", builder.Configuration["Shop:TrafficGenerator:Enabled"] ?? "true")
    .WithEnvironment("Shop__TrafficGenerator__RequestsPerSecond", builder.Configuration["Shop:TrafficGenerator:RequestsPerSecond"] ?? (canary ? "20" : "2"))
    // With a canary, frontend reports its calls on the canary route every second, well within the canary's interval.
    .WithEnvironment("Mesh__ControlPlane__TrafficReportInterval", canary ? "00:00:01" : "00:00:10")
    .WithReferenceRelationship(ordersV1)
    .WithReferenceRelationship(ordersV2)
    .WithHttpHealthCheck("/health");

// Every service exports its spans to the dashboard through OpenTelemetry's batch processor, whose queue holds 2,048 spans
// by default and drops the rest. A burst (the end-to-end tests place 2,000 orders in seconds) overflows it, so the
// services get a bigger queue and larger batches.
foreach (var service in builder.Resources.OfType<ProjectResource>().Where(r => r.Name != mesh.Resource.Name))
{
    var project = builder.CreateResourceBuilder(service)
        .WithEnvironment("OTEL_BSP_MAX_QUEUE_SIZE", "65536")
        .WithEnvironment("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2048");
    if (consul is not null)
    {
        // Read by MeshKit's Consul add-on (builder.AddMeshConsulDiscovery() in each service): discovery and registration.
        project.WithEnvironment("Mesh__Discovery__Consul__Address", consul.GetEndpoint("http")).WaitFor(consul);
    }
}

builder.Build().Run();
return 0;

static int Refuse(string why)
{
    Console.Error.WriteLine($"error: {why}");
    return 1;
}

IResourceBuilder<ProjectResource> AddOrders(string name, string version) =>
    builder.AddProject<Projects.Shop_Orders>(name)
        .WithHttpEndpoint(name: "http")
        .WithMesh(mesh, service: "orders", version: version)
        .WithReferenceRelationship(inventory)
        .WithHttpHealthCheck("/health");
