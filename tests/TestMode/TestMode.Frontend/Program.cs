namespace TestMode.Frontend;

/// <summary>The frontend: a public endpoint that reads an order from the mesh service "orders".</summary>
public sealed class Program
{
    private Program()
    {
    }

    /// <summary>Runs the app.</summary>
    /// <param name="args">Command-line arguments.</param>
    public static void Main(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.AddMesh();

        // https://orders is the mesh destination "orders", called over mTLS.
        builder.Services.AddMeshClient("orders");

        var app = builder.Build();
        app.MapGet("/checkout/{id:int}", async (int id, IHttpClientFactory clients) =>
            Results.Text(await clients.CreateClient("orders").GetStringAsync(new Uri($"/orders/{id}", UriKind.Relative)).ConfigureAwait(false), "application/json"));
        app.Run();
    }
}
