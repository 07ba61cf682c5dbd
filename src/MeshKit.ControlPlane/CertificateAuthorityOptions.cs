namespace MeshKit.ControlPlane;

/// <summary>Where the control service's certificate authority comes from.</summary>
public sealed class CertificateAuthorityOptions
{
    /// <summary>
    /// Gets or sets the path of a user-supplied CA certificate (PEM). When it is self-signed it is used as the root;
    /// otherwise it is an intermediate and <see cref="TrustBundlePath"/> names the roots. The file may hold further
    /// intermediates after the first certificate.
    /// </summary>
    public string? CertificatePath { get; set; }

    /// <summary>Gets or sets the path of the user-supplied CA's private key (PEM, PKCS#8 or SEC1/PKCS#1).</summary>
    public string? KeyPath { get; set; }

    /// <summary>Gets or sets the path of the roots (PEM) to publish when <see cref="CertificatePath"/> is an intermediate.</summary>
    public string? TrustBundlePath { get; set; }
}
