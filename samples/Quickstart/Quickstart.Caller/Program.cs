var builder = WebApplication.CreateBuilder(args);
builder.AddMesh();

// A mesh client: https://hello is the mesh destination "hello", called over mTLS.
builder.Services.AddMeshClient("hello");

var app = builder.Build();

// A public endpoint (no client certificate needed) that calls hello through the mesh.
app.MapGet("/", async (IHttpClientFactory clients) =>
    await clients.CreateClient("hello").GetStringAsync("/hello"));

app.Run();
