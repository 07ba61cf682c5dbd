namespace MeshKit.Transport;

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
