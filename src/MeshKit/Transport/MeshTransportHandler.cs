using MeshKit.Identity;

namespace MeshKit.Transport;

/// <summary>
/// The primary handler of mesh clients: sends a mesh call over mTLS to the endpoint chosen for it, and a request that is
/// not a mesh call through a plain handler, untouched (or refuses it: <see cref="NonMeshHostGate"/>). A mesh call never
/// goes out through the plain handler. It is cheap to create: the connection pools live in a singleton, so the factory's
/// handler recycling never drops warm connections or per-endpoint state.
/// </summary>
internal sealed class MeshTransportHandler(MeshConnectionPools pools, WorkloadIdentitySource identity, PassThroughTransport passThrough, NonMeshHostGate nonMesh)
    : HttpMessageHandler
{
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var call = MeshCall.Of(request);
        if (call is null)
        {
            return nonMesh.CheckPlainRequest(request) is { } refusal
                ? Task.FromException<HttpResponseMessage>(refusal)
                : passThrough.Invoker.SendAsync(request, cancellationToken);
        }

        if (call.Endpoint is not { } endpoint)
        {
            // Endpoint choice always sets one or throws; without it the call has nowhere to go inside the mesh, and it must
            // not go anywhere else.
            return Task.FromException<HttpResponseMessage>(new MeshCallException(
                NonMeshHostGate.IncompleteReason,
                $"The mesh call to {call.Destination} reached the transport without an endpoint chosen; it was not sent."));
        }

        WorkloadIdentity current;
        try
        {
            current = identity.GetValid();
        }
        catch (MeshIdentityException ex)
        {
            return Task.FromException<HttpResponseMessage>(new MeshCallException("identity_unavailable", $"The mesh call to {call.Destination} was not made: {ex.Message}", ex));
        }

        return pools.Get(call.Destination, endpoint).SendAsync(request, current, cancellationToken);
    }
}

/// <summary>
/// The plain handler for requests a mesh client makes to non-mesh hosts: the machine's trust store, no client certificate,
/// HttpClient's defaults (an ordinary call, as if the client were not a mesh client).
/// </summary>
internal sealed class PassThroughTransport : IDisposable
{
    public PassThroughTransport()
        : this(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(2) })
    {
    }

    /// <summary>Uses another plain handler: tests send non-mesh hosts to a local server without touching DNS.</summary>
    internal PassThroughTransport(HttpMessageHandler handler) => Invoker = new HttpMessageInvoker(handler, disposeHandler: true);

    public HttpMessageInvoker Invoker { get; }

    public void Dispose() => Invoker.Dispose();
}
