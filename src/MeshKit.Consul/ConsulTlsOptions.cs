namespace MeshKit.Consul;

/// <summary>TLS settings for an <c>https</c> Consul address.</summary>
public sealed class ConsulTlsOptions
{
    /// <summary>
    /// Gets or sets the path of a PEM file with the CA certificates that sign the Consul agent's certificate. When set,
    /// only these roots are trusted for Consul (not the system store). Default: the system trust store.
    /// </summary>
    public string? CaFile { get; set; }

    /// <summary>
    /// Gets or sets the path of a PEM client certificate to present to Consul (when Consul sets <c>verify_incoming</c>).
    /// It may also hold the private key. Default: no client certificate.
    /// </summary>
    public string? ClientCertificateFile { get; set; }

    /// <summary>Gets or sets the path of the PEM private key of <see cref="ClientCertificateFile"/>, when it is not in that file.</summary>
    public string? ClientKeyFile { get; set; }
}
