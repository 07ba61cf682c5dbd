using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using MeshKit.Identity;

namespace MeshKit.Testing;

/// <summary>
/// The profile of a root CA certificate, as sorted lines that tests compare: key, signature, self-signature and every
/// extension with its criticality and value. Subject names and validity are left out; they differ between the control
/// service's roots and the Aspire development root by design.
/// </summary>
public static class RootProfile
{
    /// <summary>Describes a root certificate.</summary>
    /// <param name="certificate">The certificate.</param>
    /// <returns>One line per property, sorted.</returns>
    public static IReadOnlyList<string> Describe(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        var lines = new List<string>();
        using (var key = certificate.GetECDsaPublicKey())
        {
            lines.Add(key is null ? $"key {certificate.GetKeyAlgorithm()}" : $"key ECDSA {key.ExportParameters(false).Curve.Oid.Value} ({key.KeySize} bits)");
        }

        lines.Add($"signature {certificate.SignatureAlgorithm.Value}");
        lines.Add(certificate.SubjectName.RawData.AsSpan().SequenceEqual(certificate.IssuerName.RawData) ? "self-issued" : "issued by another");
        foreach (var extension in certificate.Extensions)
        {
            var critical = extension.Critical ? "critical" : "not critical";
            lines.Add(extension switch
            {
                X509BasicConstraintsExtension bc => $"basicConstraints {critical} CA:{bc.CertificateAuthority} pathLength:{(bc.HasPathLengthConstraint ? bc.PathLengthConstraint.ToString(CultureInfo.InvariantCulture) : "none")}",
                X509KeyUsageExtension ku => $"keyUsage {critical} {ku.KeyUsages}",
                X509SubjectKeyIdentifierExtension ski => $"subjectKeyIdentifier {critical} "
                    + (ski.SubjectKeyIdentifier == new X509SubjectKeyIdentifierExtension(certificate.PublicKey, false).SubjectKeyIdentifier ? "of its public key" : "of another key"),
                _ when extension.Oid?.Value == SubjectAlternativeNames.ExtensionOid =>
                    $"subjectAltName {critical} URIs [{string.Join(", ", SubjectAlternativeNames.GetUris(certificate))}] DNS [{string.Join(", ", new X509SubjectAlternativeNameExtension(extension.RawData).EnumerateDnsNames())}]",
                _ => $"{extension.Oid?.Value} {critical}",
            });
        }

        lines.Sort(StringComparer.Ordinal);
        return lines;
    }
}
