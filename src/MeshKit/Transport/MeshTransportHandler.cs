using MeshKit.Identity;

namespace MeshKit.Transport;

/// <summary>
/// The primary handler of mesh clients: sends a mesh call over mTLS to the endpoint chosen for it, and anything else
/// through a plain handler, untouched. It is cheap to create: the connection pools live in a singleton, so the factory's
/// handler recycling never drops warm connections or per-endpoint state.
/// </summary>
internal sealed class MeshTransportHandler(MeshConnectionPools pools, WorkloadIdentitySource identity, PassThroughTransport passThrough)
    : HttpMessageHandler
{
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var call = MeshCall.Of(request);
        if (call?.Endpoint is not { } endpoint)
        {
            return passThrough.Invoker.SendAsync(request, cancellationToken);
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

/// <summary>The plain handler for requests a mesh client makes to non-mesh hosts.</summary>
internal sealed class PassThroughTransport : IDisposable
{
    public HttpMessageInvoker Invoker { get; } = new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(2) }, disposeHandler: true);

    public void Dispose() => Invoker.Dispose();
}
