using System.Security.Cryptography.X509Certificates;
using MeshKit.Identity;
using MeshKit.Testing;

namespace MeshKit.Abstractions.Tests.Identity;

[Trait("Area", "Identity")]
public sealed class SvidValidatorTests : IDisposable
{
    private const string Td = "test.mesh";
    private readonly X509Certificate2 _ca = TestCertificates.CreateRootCa("Mesh CA");
    private readonly X509Certificate2 _foreignCa = TestCertificates.CreateRootCa("Foreign CA");

    private TrustBundle Bundle => TrustBundle.Create([_ca]);

    [Fact]
    public void A_valid_svid_is_accepted_with_its_identity()
    {
        using var svid = TestCertificates.CreateSvid(_ca, $"spiffe://{Td}/ns/default/svc/orders");
        var result = SvidValidator.Validate(svid, null, Bundle, Td, DateTimeOffset.UtcNow, SvidUsage.Server);
        Assert.True(result.IsValid, result.Detail);
        Assert.Equal("orders", result.SpiffeId!.Service);
    }

    [Fact]
    public void Refusals_say_why()
    {
        var now = DateTimeOffset.UtcNow;
        Assert.Equal(SvidRejection.NoCertificate, SvidValidator.Validate(null, null, Bundle, Td, now).Rejection);

        using var foreign = TestCertificates.CreateSvid(_foreignCa, $"spiffe://{Td}/ns/default/svc/orders");
        Assert.Equal(SvidRejection.UntrustedChain, SvidValidator.Validate(foreign, null, Bundle, Td, now).Rejection);

        using var expired = TestCertificates.CreateSvid(_ca, $"spiffe://{Td}/ns/default/svc/orders", now.AddHours(-2), now.AddSeconds(-1));
        Assert.Equal(SvidRejection.Expired, SvidValidator.Validate(expired, null, Bundle, Td, now).Rejection);

        using var otherDomain = TestCertificates.CreateSvid(_ca, "spiffe://other.mesh/ns/default/svc/orders");
        Assert.Equal(SvidRejection.WrongTrustDomain, SvidValidator.Validate(otherDomain, null, Bundle, Td, now).Rejection);

        using var traversal = TestCertificates.CreateSvid(_ca, $"spiffe://{Td}/ns/evil/../svc/orders");
        Assert.Equal(SvidRejection.InvalidSpiffeId, SvidValidator.Validate(traversal, null, Bundle, Td, now).Rejection);

        using var ca = TestCertificates.CreateSvid(_ca, $"spiffe://{Td}/ns/default/svc/orders", isCa: true);
        Assert.Equal(SvidRejection.NotAnSvid, SvidValidator.Validate(ca, null, Bundle, Td, now).Rejection);
    }

    [Fact]
    public void A_bundle_with_two_roots_accepts_both_during_a_CA_rotation()
    {
        var both = TrustBundle.Create([_ca, _foreignCa]);
        using var fromOld = TestCertificates.CreateSvid(_ca, $"spiffe://{Td}/ns/default/svc/a");
        using var fromNew = TestCertificates.CreateSvid(_foreignCa, $"spiffe://{Td}/ns/default/svc/b");
        Assert.True(SvidValidator.Validate(fromOld, null, both, Td, DateTimeOffset.UtcNow).IsValid);
        Assert.True(SvidValidator.Validate(fromNew, null, both, Td, DateTimeOffset.UtcNow).IsValid);
        Assert.NotEqual(Bundle.Version, both.Version);
        Assert.Equal(both.Version, TrustBundle.Create([_foreignCa, _ca]).Version);
    }

    public void Dispose()
    {
        _ca.Dispose();
        _foreignCa.Dispose();
    }
}
