using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MeshKit.Identity;

namespace MeshKit.Testing;

/// <summary>Certificates made in tests: foreign CAs and SVIDs with chosen defects.</summary>
public static class TestCertificates
{
    /// <summary>Creates a self-signed CA certificate with its key.</summary>
    public static X509Certificate2 CreateRootCa(string name = "Foreign Test CA")
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now.AddDays(-1), now.AddYears(1));
    }

    /// <summary>Creates a leaf SVID signed by <paramref name="issuer"/> (which must hold its key), with the key attached.</summary>
    public static X509Certificate2 CreateSvid(
        X509Certificate2 issuer,
        string uri,
        DateTimeOffset? notBefore = null,
        DateTimeOffset? notAfter = null,
        bool isCa = false)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName("CN=test-svid"), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(isCa, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        request.CertificateExtensions.Add(SubjectAlternativeNames.Create(uri));
        var now = DateTimeOffset.UtcNow;
        var serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7F;
        using var cert = request.Create(issuer, notBefore ?? now.AddMinutes(-5), notAfter ?? now.AddHours(1), serial);
        return ForTls(cert.CopyWithPrivateKey(key));
    }

    /// <summary>Re-imports a certificate with an ephemeral key through PKCS#12, as Windows' SChannel requires.</summary>
    public static X509Certificate2 ForTls(X509Certificate2 certificate)
    {
        if (!OperatingSystem.IsWindows())
        {
            return certificate;
        }

        using (certificate)
        {
            return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null);
        }
    }
}
