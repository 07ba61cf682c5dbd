using MeshKit.Transport;

namespace MeshKit.Client;

/// <summary>
/// The one entry of a mesh client from IHttpClientFactory: its primary handler. A request to a mesh destination name runs
/// through that destination's <see cref="CallPath"/>; any other request goes out through a plain handler, untouched (or is
/// refused: <see cref="NonMeshHostGate"/>). Handlers the app adds to the client run before it, around the whole logical
/// call. Cheap to create: call paths, connection pools and per-endpoint state live in singletons, so the factory's
/// handler recycling drops nothing warm.
/// </summary>
internal sealed class MeshClientHandler(MeshDestination.Cache destinations, CallPathBuilder paths, PassThroughTransport passThrough, NonMeshHostGate nonMesh)
    : HttpMessageHandler
{
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (destinations.Get(request.RequestUri) is { } destination)
        {
            var sending = paths.For(destination).SendAsync(request, cancellationToken);

            // A refused WebSocket upgrade would reach the app as a bare status code: say who refused and why.
            return ProtocolUpgrade.Is(request) ? ProtocolUpgrade.ExplainRefusalAsync(sending, request, destination.Host, cancellationToken) : sending;
        }

        return nonMesh.Refuses
            ? Task.FromException<HttpResponseMessage>(nonMesh.Refuse(request.RequestUri))
            : passThrough.Invoker.SendAsync(request, cancellationToken);
    }
}
