using System.Formats.Asn1;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MeshKit.ControlPlane.Signing;
using MeshKit.ControlPlane.Storage;
using MeshKit.Identity;
using MeshKit.Testing;
using Microsoft.Extensions.Options;

namespace MeshKit.ControlPlane.Tests.Signing;

/// <summary>
/// The sign path encodes certificates itself (loading one with OpenSSL 3.0 costs five times its signature) and signs with
/// copies of the CA key: what it issues must be what <see cref="CertificateRequest.Create(X500DistinguishedName, X509SignatureGenerator, DateTimeOffset, DateTimeOffset, ReadOnlySpan{byte})"/> made before, byte for byte.
/// </summary>
[Trait("Area", "Identity")]
public sealed class CertificateEncoderTests
{
    public static TheoryData<string, bool, bool> Cases() => new()
    {
        { "2026-12-07T10:11:12.345+00:00", false, false }, // a workload certificate, sub-second times
        { "2026-12-07T10:11:12+02:00", true, false }, // the control service's own: DNS and IP names, an offset
        { "2049-12-31T23:59:59.999+00:00", false, true }, // UTCTime then GeneralizedTime (RFC 5280 from 2050)
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void The_encoded_certificate_is_the_one_CertificateRequest_Create_makes(string start, bool names, bool rsaSubject)
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var ca = CertificateAuthorityRoots.CreateRoot(caKey, "mesh.local", new X500DistinguishedName("CN=root"), DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture), TimeSpan.FromDays(36500));
        using AsymmetricAlgorithm subjectKey = rsaSubject ? RSA.Create(2048) : ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var publicKey = subjectKey is RSA rsa ? new PublicKey(rsa) : new PublicKey((ECDsa)subjectKey);
        var request = new CertificateRequest(new X500DistinguishedName("O=MeshKit, OU=default, CN=orders"), publicKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(SubjectAlternativeNames.Create("spiffe://mesh.local/ns/default/svc/orders", names ? ["localhost"] : null, names ? [IPAddress.Loopback] : null));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(publicKey, critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        var notBefore = DateTimeOffset.Parse(start, System.Globalization.CultureInfo.InvariantCulture);
        var notAfter = notBefore.AddHours(1);
        byte[] serial = [0x35, 0x80, 0x01, 0xFF, 0x00, 0x10, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB];

        Assert.True(CertificateEncoder.CanEncode(publicKey));
        var der = CertificateEncoder.Encode(request, ca.SubjectName, X509SignatureGenerator.CreateForECDsa(caKey), notBefore, notAfter, serial);
        using var expected = request.Create(ca.SubjectName, X509SignatureGenerator.CreateForECDsa(caKey), notBefore, notAfter, serial);

        // ECDSA signatures are randomized: the signed part must be equal, and the signature must verify with the CA key.
        var (tbs, algorithm, signature) = Split(der);
        var (expectedTbs, expectedAlgorithm, _) = Split(expected.RawData);
        Assert.Equal(Convert.ToHexString(expectedTbs), Convert.ToHexString(tbs));
        Assert.Equal(Convert.ToHexString(expectedAlgorithm), Convert.ToHexString(algorithm));
        Assert.True(caKey.VerifyData(tbs, signature, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence));

        // The fields the sign endpoint records without loading the certificate are the loaded certificate's.
        using var loaded = X509CertificateLoader.LoadCertificate(der);
        Assert.Equal(loaded.SerialNumber, CertificateEncoder.SerialNumberText(serial));
        Assert.Equal(new DateTimeOffset(loaded.NotBefore.ToUniversalTime(), TimeSpan.Zero), CertificateEncoder.Encoded(notBefore));
        Assert.Equal(new DateTimeOffset(loaded.NotAfter.ToUniversalTime(), TimeSpan.Zero), CertificateEncoder.Encoded(notAfter));
    }

    [Fact]
    public void Dates_in_the_wrong_order_are_refused_as_CertificateRequest_Create_refuses_them()
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=orders", key, HashAlgorithmName.SHA256);
        var now = DateTimeOffset.UtcNow;
        Assert.Throws<ArgumentException>(() => request.Create(new X500DistinguishedName("CN=root"), X509SignatureGenerator.CreateForECDsa(caKey), now, now.AddSeconds(-1), [1]));
        Assert.Throws<ArgumentException>(() => CertificateEncoder.Encode(request, new X500DistinguishedName("CN=root"), X509SignatureGenerator.CreateForECDsa(caKey), now, now.AddSeconds(-1), [1]));
    }

    [Fact]
    public async Task Certificates_issued_on_many_threads_at_once_each_verify_under_the_CA_and_carry_their_own_fields()
    {
        using var data = new TempDirectory("ca-encoder");
        var options = Options.Create(new ControlPlaneOptions { DataDirectory = data.Path });
        using var ca = new MeshKit.ControlPlane.CertificateAuthority.CertificateAuthority(options, new ControlPlaneDataDirectory(options), TimeProvider.System);
        var id = SpiffeId.Create("mesh.local", SpiffeId.DefaultNamespace, "orders");
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var publicKey = new PublicKey(key);

        var issued = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => Enumerable.Range(0, 25).Select(_ => ca.Issue(id, publicKey)).ToList(), TestContext.Current.CancellationToken)));
        var all = issued.SelectMany(i => i).ToList();
        Assert.Equal(all.Count, all.Select(i => i.SerialNumber).Distinct().Count());
        foreach (var certificate in all)
        {
            using var leaf = certificate.Leaf;
            using var fromPem = X509Certificate2.CreateFromPem(certificate.ChainPem);
            Assert.Equal(leaf.RawData, fromPem.RawData);
            Assert.Equal(leaf.SerialNumber, certificate.SerialNumber);
            Assert.Equal(new DateTimeOffset(leaf.NotBefore.ToUniversalTime(), TimeSpan.Zero), certificate.NotBefore);
            Assert.Equal(new DateTimeOffset(leaf.NotAfter.ToUniversalTime(), TimeSpan.Zero), certificate.NotAfter);
            Assert.Equal(leaf.Issuer, certificate.Issuer);
            var validation = SvidValidator.Validate(leaf, [], ca.Bundle, "mesh.local", DateTimeOffset.UtcNow, SvidUsage.Client);
            Assert.True(validation.IsValid, validation.Detail);
            Assert.Equal(id, validation.SpiffeId);
        }
    }

    private static (byte[] Tbs, byte[] Algorithm, byte[] Signature) Split(byte[] certificate)
    {
        var reader = new AsnReader(certificate, AsnEncodingRules.DER).ReadSequence();
        var tbs = reader.ReadEncodedValue().ToArray();
        var algorithm = reader.ReadEncodedValue().ToArray();
        var signature = reader.ReadBitString(out _);
        return (tbs, algorithm, signature);
    }
}
