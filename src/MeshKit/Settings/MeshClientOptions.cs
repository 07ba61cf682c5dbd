namespace MeshKit;

/// <summary>
/// Which hosts mesh clients treat as mesh destinations, and what they do with requests to any other host. A mesh name is
/// <c>&lt;service&gt;</c> (a service in this workload's namespace) or <c>&lt;service&gt;.&lt;namespace&gt;</c> for this
/// workload's namespace, a namespace listed in <see cref="Namespaces"/>, or a host with its own entry in
/// <c>Mesh:Discovery:Static</c>. Everything else (<c>example.com</c>, <c>localhost</c>, an IP address, a URI with a port)
/// never enters mesh discovery.
/// </summary>
public sealed class MeshClientOptions
{
    /// <summary>
    /// Gets the namespaces, besides this workload's own, whose services mesh clients call as
    /// <c>https://&lt;service&gt;.&lt;namespace&gt;</c>. Each is a DNS label; <c>mesh-system</c>, <c>localhost</c> and
    /// <c>local</c> are refused. Read at start.
    /// </summary>
    public IList<string> Namespaces { get; } = new List<string>();

    /// <summary>
    /// Gets or sets what a mesh client does with a request that is not a mesh call (another host, scheme or port).
    /// Default <see cref="NonMeshHostMode.PassThrough"/>.
    /// </summary>
    public NonMeshHostMode NonMeshHosts { get; set; } = NonMeshHostMode.PassThrough;

    /// <summary>The default of <see cref="RequestBufferLimit"/>: 64 KiB, as Linkerd.</summary>
    public const int DefaultRequestBufferLimit = 64 * 1024;

    /// <summary>
    /// Gets or sets the most bytes of a request body a mesh client keeps while sending it, so that a retry or a mirror copy
    /// can send it again. A body is streamed through, never held back; a larger body is never retried once it started,
    /// and is not mirrored. 0 keeps nothing. Default 65,536 (64 KiB); at most 16 MiB.
    /// </summary>
    public int RequestBufferLimit { get; set; } = DefaultRequestBufferLimit;
}
