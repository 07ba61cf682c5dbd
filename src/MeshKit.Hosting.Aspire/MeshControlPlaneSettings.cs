namespace Aspire.Hosting;

/// <summary>Settings of the mesh that <c>AddMeshControlPlane()</c> starts for an AppHost.</summary>
public sealed class MeshControlPlaneSettings
{
    /// <summary>Gets or sets the trust domain of every SPIFFE ID in the mesh. Default <c>mesh.local</c>.</summary>
    public string TrustDomain { get; set; } = "mesh.local";

    /// <summary>
    /// Gets or sets the folder that keeps the mesh's local state between runs: the development root CA (<c>ca/</c>) and
    /// the control service's data directory (<c>control-plane/</c>). Default: <c>.meshkit</c> next to the AppHost project.
    /// Keep it out of source control; it holds a CA private key.
    /// </summary>
    public string? StateDirectory { get; set; }

    /// <summary>
    /// Gets or sets the lifetime of workload certificates. Default: the control service's own default (24 hours).
    /// Short values (minutes) show rotation at work.
    /// </summary>
    public TimeSpan? CertificateLifetime { get; set; }

    /// <summary>Gets or sets a fixed port for the control service's HTTPS endpoint. Default: a free port chosen at start.</summary>
    public int? Port { get; set; }
}
