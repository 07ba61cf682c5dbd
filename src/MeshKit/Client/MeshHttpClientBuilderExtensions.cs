using MeshKit.Client;
using MeshKit.Transport;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Makes <c>IHttpClientFactory</c> clients mesh clients.</summary>
public static class MeshHttpClientBuilderExtensions
{
    // The assembly of Microsoft.Extensions.ServiceDiscovery, whose ResolvingHttpDelegatingHandler AddServiceDiscovery() adds.
    private static readonly System.Reflection.Assembly ServiceDiscoveryAssembly = typeof(ServiceDiscoveryHttpClientBuilderExtensions).Assembly;

    /// <summary>
    /// Makes this client a mesh client: an https request to a mesh destination name (<c>https://orders/...</c>, or
    /// <c>https://orders.payments/...</c> for a namespace the workload calls) is resolved through MeshKit's discovery, sent
    /// over mTLS with the workload certificate, and only accepted from a server presenting the destination's SPIFFE ID.
    /// Requests to other hosts (<c>example.com</c>, <c>localhost</c>, an IP address) never enter mesh discovery: they go out
    /// unchanged, or are refused when <c>Mesh:Client:NonMeshHosts</c> is <c>Refuse</c>. Service discovery and standard resilience handlers that app-wide defaults added to this
    /// client are removed, since MeshKit does both for mesh calls. Call <c>builder.AddMesh()</c> on the host too.
    /// </summary>
    /// <param name="builder">The client builder.</param>
    /// <returns>The builder.</returns>
    public static IHttpClientBuilder AddMesh(this IHttpClientBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        // One entry, the primary handler: it decides by the request's host whether this is a mesh call, and runs a mesh call
        // through its destination's call path (route, resilience, endpoint choice, attempt, transport: Client/CallPath.cs).
        builder.ConfigurePrimaryHttpMessageHandler(sp => new MeshClientHandler(
            sp.GetRequiredService<MeshDestination.Cache>(),
            sp.GetRequiredService<CallPathBuilder>(),
            sp.GetRequiredService<PassThroughTransport>(),
            sp.GetRequiredService<NonMeshHostGate>()));
        // Remove what would stack on top of MeshKit: a second retry loop and a second URI rewrite. Both run after whatever
        // ConfigureHttpClientDefaults added, whichever was called first: IHttpClientFactory applies the defaults before a
        // named client's own configuration. Resilience handlers go through the resilience library's own API (marked
        // experimental in Microsoft.Extensions.Http.Resilience 11; MeshKit pins the version it is built against).
#pragma warning disable EXTEXP0001
        builder.RemoveAllResilienceHandlers();
#pragma warning restore EXTEXP0001

        // Service discovery has no removal API and its handler type is internal: its one delegating handler is recognised by
        // the assembly it comes from (a compile-time reference, not a type name).
        builder.ConfigureAdditionalHttpMessageHandlers(static (handlers, _) =>
        {
            for (var i = handlers.Count - 1; i >= 0; i--)
            {
                if (handlers[i].GetType().Assembly == ServiceDiscoveryAssembly)
                {
                    handlers.RemoveAt(i);
                }
            }
        });
        return builder;
    }

    /// <summary>
    /// Adds a named mesh client whose base address is <c>https://&lt;service&gt;</c>; get it with
    /// <c>IHttpClientFactory.CreateClient(service)</c>.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="service">The destination: <c>orders</c>, or <c>orders.payments</c> for another namespace.</param>
    /// <returns>The client builder, for further configuration.</returns>
    public static IHttpClientBuilder AddMeshClient(this IServiceCollection services, string service)
    {
        ArgumentException.ThrowIfNullOrEmpty(service);
        return services.AddHttpClient(service, client => client.BaseAddress = new Uri($"https://{service}")).AddMesh();
    }

    /// <summary>Adds a typed mesh client whose base address is <c>https://&lt;service&gt;</c>.</summary>
    /// <typeparam name="TClient">The typed client.</typeparam>
    /// <param name="services">The services.</param>
    /// <param name="service">The destination: <c>orders</c>, or <c>orders.payments</c> for another namespace.</param>
    /// <returns>The client builder, for further configuration.</returns>
    public static IHttpClientBuilder AddMeshClient<TClient>(this IServiceCollection services, string service)
        where TClient : class
    {
        ArgumentException.ThrowIfNullOrEmpty(service);
        return services.AddHttpClient<TClient>(client => client.BaseAddress = new Uri($"https://{service}")).AddMesh();
    }
}
