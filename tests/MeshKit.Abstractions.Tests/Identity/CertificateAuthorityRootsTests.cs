using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MeshKit.Identity;
using MeshKit.Testing;

namespace MeshKit.Abstractions.Tests.Identity;

[Trait("Area", "Identity")]
public sealed class CertificateAuthorityRootsTests
{
    private static readonly DateTimeOffset Now = new(2030, 1, 2, 3, 4, 5, TimeSpan.Zero);

    private static X500DistinguishedName Subject => new("CN=Test root, O=MeshKit");

    [Fact]
    public void A_root_has_exactly_the_profile_of_an_SVID_signing_certificate_for_its_trust_domain()
    {
        using var key = CertificateAuthorityRoots.CreateKey();
        using var root = CertificateAuthorityRoots.CreateRoot(key, "mesh.test", Subject, Now, TimeSpan.FromDays(10));

        Assert.Equal(
            [
                "basicConstraints critical CA:True pathLength:none",
                "key ECDSA 1.2.840.10045.3.1.7 (256 bits)",
                "keyUsage critical CrlSign, KeyCertSign",
                "self-issued",
                "signature 1.2.840.10045.4.3.2",
                "subjectAltName not critical URIs [spiffe://mesh.test] DNS []",
                "subjectKeyIdentifier not critical of its public key",
            ],
            RootProfile.Describe(root));
        Assert.Equal(4, root.Extensions.Count);
        Assert.Equal(Now.UtcDateTime - CertificateAuthorityRoots.Backdate, root.NotBefore.ToUniversalTime());
        Assert.Equal(Now.UtcDateTime.AddDays(10), root.NotAfter.ToUniversalTime());
        Assert.Equal(Subject.Name, root.Subject);
    }

    [Fact]
    public void The_root_is_public_and_signed_by_the_callers_key()
    {
        using var key = CertificateAuthorityRoots.CreateKey();
        using var root = CertificateAuthorityRoots.CreateRoot(key, "mesh.test", Subject, Now, TimeSpan.FromDays(10));

        Assert.False(root.HasPrivateKey);
        using var publicKey = root.GetECDsaPublicKey()!;
        Assert.Equal(key.ExportSubjectPublicKeyInfo(), publicKey.ExportSubjectPublicKeyInfo());

        // Self-signed: the chain engine accepts it as its own anchor.
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(root);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = Now.UtcDateTime;
        Assert.True(chain.Build(root), string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation)));
    }

    [Fact]
    public void Two_roots_of_one_trust_domain_differ_in_key_and_serial_only()
    {
        using var keyA = CertificateAuthorityRoots.CreateKey();
        using var keyB = CertificateAuthorityRoots.CreateKey();
        using var a = CertificateAuthorityRoots.CreateRoot(keyA, "mesh.test", Subject, Now, TimeSpan.FromDays(10));
        using var b = CertificateAuthorityRoots.CreateRoot(keyB, "mesh.test", Subject, Now, TimeSpan.FromDays(10));

        Assert.Equal(RootProfile.Describe(a), RootProfile.Describe(b));
        Assert.NotEqual(a.SerialNumber, b.SerialNumber);
        Assert.NotEqual(a.Thumbprint, b.Thumbprint);
    }

    [Fact]
    public void A_bad_trust_domain_a_key_that_is_not_P256_or_no_lifetime_is_refused_naming_why()
    {
        using var key = CertificateAuthorityRoots.CreateKey();
        var td = Assert.Throws<ArgumentException>(() => CertificateAuthorityRoots.CreateRoot(key, "Mesh.Test", Subject, Now, TimeSpan.FromDays(1)));
        Assert.Contains("'Mesh.Test'", td.Message, StringComparison.Ordinal);
        Assert.Equal("trustDomain", td.ParamName);

        using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        var curve = Assert.Throws<ArgumentException>(() => CertificateAuthorityRoots.CreateRoot(p384, "mesh.test", Subject, Now, TimeSpan.FromDays(1)));
        Assert.Contains("P-256", curve.Message, StringComparison.Ordinal);

        var lifetime = Assert.Throws<ArgumentException>(() => CertificateAuthorityRoots.CreateRoot(key, "mesh.test", Subject, Now, TimeSpan.Zero));
        Assert.Equal("lifetime", lifetime.ParamName);
    }
    [Fact]
    public void An_intermediate_signs_workloads_only_chains_to_its_root_and_ends_no_later_than_it()
    {
        using var rootKey = CertificateAuthorityRoots.CreateKey();
        using var root = CertificateAuthorityRoots.CreateRoot(rootKey, "mesh.test", Subject, Now, TimeSpan.FromDays(10));
        using var key = CertificateAuthorityRoots.CreateKey();
        using var intermediate = CertificateAuthorityRoots.CreateIntermediate(root, rootKey, key, "mesh.test", new X500DistinguishedName("CN=Replica a, O=MeshKit"), Now, TimeSpan.FromDays(30));

        var constraints = intermediate.Extensions.OfType<X509BasicConstraintsExtension>().Single();
        Assert.True(constraints is { Critical: true, CertificateAuthority: true, HasPathLengthConstraint: true, PathLengthConstraint: 0 });
        Assert.Equal(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, intermediate.Extensions.OfType<X509KeyUsageExtension>().Single().KeyUsages);
        Assert.Equal(root.SubjectName.Name, intermediate.IssuerName.Name);
        Assert.Equal(
            root.Extensions.OfType<X509SubjectKeyIdentifierExtension>().Single().SubjectKeyIdentifier,
            Convert.ToHexString(intermediate.Extensions.OfType<X509AuthorityKeyIdentifierExtension>().Single().KeyIdentifier!.Value.Span));
        Assert.Contains("spiffe://mesh.test", RootProfile.Describe(intermediate).Single(d => d.StartsWith("subjectAltName", StringComparison.Ordinal)), StringComparison.Ordinal);
        Assert.Equal(root.NotAfter, intermediate.NotAfter); // asked for 30 days, cut at the root's 10
        Assert.Null(intermediate.GetECDsaPrivateKey());

        // It chains to the root alone (the root's key signed it), and nothing else: custom trust, no machine store.
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = Now.UtcDateTime;
        chain.ChainPolicy.CustomTrustStore.Add(root);
        Assert.True(chain.Build(intermediate), string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation)));
    }

    [Fact]
    public void An_intermediate_is_refused_for_a_key_that_is_not_the_roots_or_a_root_that_is_not_a_CA()
    {
        using var rootKey = CertificateAuthorityRoots.CreateKey();
        using var root = CertificateAuthorityRoots.CreateRoot(rootKey, "mesh.test", Subject, Now, TimeSpan.FromDays(10));
        using var other = CertificateAuthorityRoots.CreateKey();
        using var key = CertificateAuthorityRoots.CreateKey();
        var subject = new X500DistinguishedName("CN=Replica a");

        var wrongKey = Assert.Throws<ArgumentException>(() => CertificateAuthorityRoots.CreateIntermediate(root, other, key, "mesh.test", subject, Now, TimeSpan.FromDays(1)));
        Assert.Equal("rootKey", wrongKey.ParamName);

        var leaf = new CertificateRequest("CN=leaf", other, HashAlgorithmName.SHA256).CreateSelfSigned(Now.AddDays(-1), Now.AddDays(1));
        var notCa = Assert.Throws<ArgumentException>(() => CertificateAuthorityRoots.CreateIntermediate(leaf, other, key, "mesh.test", subject, Now, TimeSpan.FromDays(1)));
        Assert.Contains("not a CA certificate", notCa.Message, StringComparison.Ordinal);

        var expired = Assert.Throws<ArgumentException>(() => CertificateAuthorityRoots.CreateIntermediate(root, rootKey, key, "mesh.test", subject, Now.AddDays(11), TimeSpan.FromDays(1)));
        Assert.Contains("not valid now", expired.Message, StringComparison.Ordinal);
    }
}
