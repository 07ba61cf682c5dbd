using MeshKit.Server;

// The other of two services that call each other over mTLS: /call asks the peer's /whoami through the mesh.
var builder = WebApplication.CreateBuilder(args);
builder.AddMesh();
var peer = builder.Configuration["Peer"] ?? throw new InvalidOperationException("Set Peer to the other service's mesh name.");
builder.Services.AddMeshClient(peer);

var app = builder.Build();

// Public endpoint: calls the peer through the mesh and returns its answer.
app.MapGet("/call", async (IHttpClientFactory clients) => await clients.CreateClient(peer).GetStringAsync("/whoami"));

// Mesh endpoint, for the peer only: says who called and how.
app.MapGet("/whoami", (HttpContext http) =>
{
    var caller = http.Features.Get<IMeshPeerFeature>()!;
    return $"{builder.Configuration["Mesh:Service:Name"]} answered {caller.SpiffeId} over {http.Request.Protocol}";
}).RequireMeshCaller(peer);

app.Run();
