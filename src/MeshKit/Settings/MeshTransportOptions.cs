namespace MeshKit;

/// <summary>How mesh clients connect.</summary>
public sealed class MeshTransportOptions
{
    /// <summary>
    /// Gets or sets the longest a pooled connection lives. Default 5 minutes. It is further capped at a quarter of the
    /// certificate lifetime, so that no connection outlives the certificates it was opened with.
    /// </summary>
    public TimeSpan MaxConnectionLifetime { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Gets or sets how long a connection may sit idle in the pool. Default 1 minute.</summary>
    public TimeSpan IdleConnectionTimeout { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Gets or sets the connect timeout. Default 5 seconds.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Gets or sets the HTTP version mesh calls ask for. Default <c>2.0</c>: HTTP/2 over mTLS costs about as much CPU per
    /// request as plaintext HTTP/1.1, while mTLS over HTTP/1.1 costs about twice as much. A peer without h2 still gets
    /// HTTP/1.1 through ALPN.
    /// </summary>
    public Version HttpVersion { get; set; } = System.Net.HttpVersion.Version20;
}
