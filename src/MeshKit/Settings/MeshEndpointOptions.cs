namespace MeshKit;

/// <summary>The mesh endpoint: HTTPS that requires a mesh client certificate, HTTP/2 and HTTP/1.1.</summary>
public sealed class MeshEndpointOptions
{
    /// <summary>
    /// Gets or sets the port of the mesh endpoint; 0 picks a free port. When unset, the workload has no mesh endpoint
    /// (it only calls other services).
    /// </summary>
    public int? Port { get; set; }

    /// <summary>Gets or sets the address the mesh endpoint binds to. Default <c>0.0.0.0</c> (every IPv4 interface).</summary>
    public string Address { get; set; } = "0.0.0.0";

    /// <summary>Gets or sets the most connections the mesh endpoint holds open at once; more are closed at once. Default 10,000.</summary>
    public int MaxConnections { get; set; } = 10_000;

    /// <summary>Gets or sets how long a TLS handshake on the mesh endpoint may take before the connection is closed. Default 10 s.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Gets or sets the address other workloads use to reach this one (registered in discovery). Default: the bind
    /// address, or the machine's host name when binding every interface.
    /// </summary>
    public string? AdvertiseAddress { get; set; }
}
