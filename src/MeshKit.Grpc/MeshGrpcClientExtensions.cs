namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds gRPC clients (Grpc.Net.ClientFactory) whose calls go through the mesh.</summary>
public static class MeshGrpcClientExtensions
{
    /// <summary>
    /// Adds a typed gRPC client of <paramref name="service"/> that is a mesh client: its address is
    /// <c>https://&lt;service&gt;</c> and every call is a mesh call (discovery, routes and subsets, an endpoint chosen per
    /// call, mTLS with the workload's certificate, the server's SPIFFE ID checked). The same as
    /// <c>services.AddGrpcClient&lt;TClient&gt;(o =&gt; o.Address = new("https://inventory")).AddMesh()</c>.
    /// Call <c>builder.AddMesh()</c> on the host too.
    /// </summary>
    /// <typeparam name="TClient">The generated gRPC client (<c>Inventory.InventoryClient</c>).</typeparam>
    /// <param name="services">The services.</param>
    /// <param name="service">The destination: <c>inventory</c>, or <c>inventory.shop</c> for another namespace.</param>
    /// <returns>The client builder, for further configuration (interceptors, call credentials, handlers).</returns>
    public static IHttpClientBuilder AddMeshGrpcClient<TClient>(this IServiceCollection services, string service)
        where TClient : class
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrEmpty(service);
        var address = new Uri($"https://{service}");
        return services.AddGrpcClient<TClient>(options => options.Address = address).AddMesh();
    }
}
