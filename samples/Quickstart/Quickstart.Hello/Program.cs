using MeshKit.Server;

var builder = WebApplication.CreateBuilder(args);
builder.AddMesh();

var app = builder.Build();

// Only mesh callers, and only the "caller" service, may ask for a greeting.
app.MapGet("/hello", (HttpContext http) =>
{
    var peer = http.Features.Get<IMeshPeerFeature>()!;
    return $"hello, {peer.SpiffeId} (over {http.Request.Protocol})";
}).RequireMeshCaller("caller");

app.Run();
