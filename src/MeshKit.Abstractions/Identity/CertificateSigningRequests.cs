using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MeshKit.Identity;

/// <summary>Builds the PKCS#10 requests a workload sends to the control service.</summary>
public static class CertificateSigningRequests
{
    /// <summary>Creates a PEM CSR for <paramref name="id"/>, signed by <paramref name="key"/>, naming the ID as its only URI SAN.</summary>
    /// <param name="key">The workload's private key (ECDSA P-256 by default).</param>
    /// <param name="id">The identity to request.</param>
    /// <returns>The PEM text.</returns>
    public static string Create(ECDsa key, SpiffeId id)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(id);
        var request = new CertificateRequest(new X500DistinguishedName(string.Empty), key, HashAlgorithmName.SHA256);

        // The subject is empty, so the SAN is critical (RFC 5280 4.2.1.6); the CA sets its own extensions anyway.
        request.CertificateExtensions.Add(SubjectAlternativeNames.Create(id.Value, critical: true));
        return request.CreateSigningRequestPem();
    }
}
