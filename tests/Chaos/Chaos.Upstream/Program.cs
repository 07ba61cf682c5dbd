var builder = WebApplication.CreateSlimBuilder(args);
builder.AddMesh();
var app = builder.Build();
var name = Environment.GetEnvironmentVariable("CHAOS_NAME") ?? "upstream";
app.MapGet("/{**path}", () => name);
app.Run();
