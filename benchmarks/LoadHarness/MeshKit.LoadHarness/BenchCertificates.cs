using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MeshKit.LoadHarness;

/// <summary>
/// The certificates of the hand-wired topologies (direct-mtls, direct-mtls-h2, sidecar-haproxy): one bench CA, a server
/// certificate for 127.0.0.1 and localhost, a client certificate. ECDSA P-256, as MeshKit's, so the TLS work is the same.
/// </summary>
internal sealed class BenchCertificates
{
    private BenchCertificates(string folder) => Folder = folder;

    public string Folder { get; }

    public string CaPath => Path.Combine(Folder, "ca.pem");

    public string ServerCertPath => Path.Combine(Folder, "server.crt.pem");

    public string ServerKeyPath => Path.Combine(Folder, "server.key.pem");

    /// <summary>Gets the certificate and key in one file, as haproxy wants them.</summary>
    public string ServerBundlePath => Path.Combine(Folder, "server.pem");

    public string ClientCertPath => Path.Combine(Folder, "client.crt.pem");

    public string ClientKeyPath => Path.Combine(Folder, "client.key.pem");

    public string ClientBundlePath => Path.Combine(Folder, "client.pem");

    public static BenchCertificates Create(string folder)
    {
        Directory.CreateDirectory(folder);
        var result = new BenchCertificates(folder);
        var now = DateTimeOffset.UtcNow;
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=MeshKit bench CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        using var ca = caRequest.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(2));
        File.WriteAllText(result.CaPath, ca.ExportCertificatePem());

        WriteLeaf(ca, "server", now, result.ServerCertPath, result.ServerKeyPath, result.ServerBundlePath);
        WriteLeaf(ca, "client", now, result.ClientCertPath, result.ClientKeyPath, result.ClientBundlePath);
        return result;
    }

    private static void WriteLeaf(X509Certificate2 ca, string name, DateTimeOffset now, string certPath, string keyPath, string bundlePath)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN=bench-{name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        var serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7F;
        using var leaf = request.Create(ca, now.AddMinutes(-5), now.AddDays(1), serial);
        var certPem = leaf.ExportCertificatePem();
        var keyPem = key.ExportPkcs8PrivateKeyPem();
        File.WriteAllText(certPath, certPem);
        File.WriteAllText(keyPath, keyPem);
        File.WriteAllText(bundlePath, certPem + "\n" + keyPem + "\n");
    }
}
