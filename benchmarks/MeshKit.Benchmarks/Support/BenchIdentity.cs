using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MeshKit.Identity;

namespace MeshKit.Benchmarks.Support;

/// <summary>A CA and X.509-SVIDs made in memory, shaped like the control service's (ECDSA P-256, one URI SAN, EKU server and client).</summary>
public sealed class BenchIdentity : IDisposable
{
    public const string TrustDomain = "mesh.local";

    private BenchIdentity(X509Certificate2 root, TrustBundle bundle)
    {
        Root = root;
        Bundle = bundle;
    }

    public X509Certificate2 Root { get; }

    public TrustBundle Bundle { get; }

    public static BenchIdentity Create()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=MeshKit bench root", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        var root = request.CreateSelfSigned(now.AddDays(-1), now.AddDays(30));
        return new BenchIdentity(root, TrustBundle.Create([root]));
    }

    /// <summary>Issues an SVID (with its key) for <paramref name="service"/> in namespace <c>default</c>.</summary>
    public X509Certificate2 Issue(string service)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName(string.Empty), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        request.CertificateExtensions.Add(SubjectAlternativeNames.Create(SpiffeId.Create(TrustDomain, SpiffeId.DefaultNamespace, service).Value, critical: true));
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        var now = DateTimeOffset.UtcNow;
        using var leaf = request.Create(Root, now.AddMinutes(-5), now.AddDays(1), serial);
        return leaf.CopyWithPrivateKey(key);
    }

    /// <summary>A workload identity as the renewal service would install it.</summary>
    internal WorkloadIdentity CreateWorkloadIdentity(string service) =>
        new(SpiffeId.Create(TrustDomain, SpiffeId.DefaultNamespace, service), Issue(service), [], Bundle, DateTimeOffset.UtcNow);

    public void Dispose() => Root.Dispose();
}
