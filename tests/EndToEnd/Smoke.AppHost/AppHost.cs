var builder = DistributedApplication.CreateBuilder(args);
builder.AddProject<Projects.Smoke_Service>("smoke").WithHttpEndpoint(name: "http");
builder.Build().Run();
