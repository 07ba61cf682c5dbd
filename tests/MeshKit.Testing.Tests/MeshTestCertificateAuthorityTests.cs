using System.Security.Cryptography.X509Certificates;
using MeshKit.Identity;
using Microsoft.Extensions.Time.Testing;

namespace MeshKit.Testing.Tests;

/// <summary>The in-memory CA issues what the control service issues: SPIFFE X.509-SVIDs with the same profile.</summary>
[Trait("Area", "Testing")]
public sealed class MeshTestCertificateAuthorityTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 7, 6, 0, 0, TimeSpan.Zero);

    [Fact]
    public void An_issued_certificate_is_an_SVID_of_the_trust_domain_with_the_control_services_profile_and_lifetime()
    {
        var time = new FakeTimeProvider(Now);
        using var ca = new MeshTestCertificateAuthority(new MeshTestCertificateAuthorityOptions
        {
            TrustDomain = "shop.test",
            CertificateLifetime = TimeSpan.FromMinutes(5),
            TimeProvider = time,
        });

        using var certificate = ca.IssueCertificate("orders", "payments");

        var bundle = TrustBundle.FromPem(ca.TrustBundlePem);
        var result = SvidValidator.Validate(certificate, null, bundle, "shop.test", Now);
        Assert.True(result.IsValid, result.Detail);
        Assert.Equal("spiffe://shop.test/ns/payments/svc/orders", result.SpiffeId!.Value);
        Assert.True(certificate.HasPrivateKey);
        Assert.False(certificate.Extensions.OfType<X509BasicConstraintsExtension>().Single().CertificateAuthority);
        Assert.Equal(X509KeyUsageFlags.DigitalSignature, certificate.Extensions.OfType<X509KeyUsageExtension>().Single().KeyUsages);
        var usages = certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single().EnhancedKeyUsages.Cast<System.Security.Cryptography.Oid>().Select(o => o.Value).ToList();
        Assert.Equal(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"], usages);
        Assert.Equal(Now + TimeSpan.FromMinutes(5), new DateTimeOffset(certificate.NotAfter.ToUniversalTime()));
        Assert.Equal(Now - TimeSpan.FromSeconds(30), new DateTimeOffset(certificate.NotBefore.ToUniversalTime()));
        Assert.Equal(1, ca.IssuedCount);
    }

    [Fact]
    public void Two_CAs_do_not_trust_each_others_certificates()
    {
        using var first = new MeshTestCertificateAuthority();
        using var second = new MeshTestCertificateAuthority();
        using var certificate = second.IssueCertificate("orders");

        var result = SvidValidator.Validate(certificate, null, TrustBundle.FromPem(first.TrustBundlePem), first.TrustDomain, DateTimeOffset.UtcNow);

        Assert.False(result.IsValid);
        Assert.Equal(SvidRejection.UntrustedChain, result.Rejection);
    }

    [Fact]
    public void A_bad_trust_domain_or_lifetime_is_refused_with_the_reason()
    {
        var domain = Assert.Throws<ArgumentException>(() => new MeshTestCertificateAuthority(new MeshTestCertificateAuthorityOptions { TrustDomain = "Not A Domain" }));
        Assert.Contains("Not A Domain", domain.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new MeshTestCertificateAuthority(new MeshTestCertificateAuthorityOptions { CertificateLifetime = TimeSpan.Zero }));
    }
}
