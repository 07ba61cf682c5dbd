using MeshKit.Server;

namespace TestMode.Orders;

/// <summary>The orders service: only the mesh service "frontend" may read an order, and it learns who asked.</summary>
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

        var app = builder.Build();
        app.MapGet("/orders/{id:int}", (int id, HttpContext http) =>
            new OrderView(id, http.Features.Get<IMeshPeerFeature>()!.SpiffeId.Value)).RequireMeshCaller("frontend");
        app.Run();
    }
}

/// <summary>An order as the API shows it, with the SPIFFE ID of the caller the mesh authenticated.</summary>
/// <param name="Id">The order's number.</param>
/// <param name="Caller">The caller's SPIFFE ID.</param>
public sealed record OrderView(int Id, string Caller);
