using System.Security.Cryptography.X509Certificates;
using MeshKit.ControlPlane.Storage;
using MeshKit.Identity;
using MeshKit.Testing;
using Microsoft.Extensions.Options;
using Authority = MeshKit.ControlPlane.CertificateAuthority.CertificateAuthority;

namespace MeshKit.ControlPlane.Tests.CertificateAuthority;

[Trait("Area", "Identity")]
public sealed class GeneratedRootTests
{
    [Fact]
    public void Generated_roots_have_the_shared_root_profile_with_the_trust_domains_SPIFFE_ID()
    {
        using var data = new TempDirectory("ca-profile");
        var options = Options.Create(new ControlPlaneOptions { TrustDomain = "mesh.test", DataDirectory = data.Path });
        using var ca = new Authority(options, new ControlPlaneDataDirectory(options), TimeProvider.System);
        var rotated = ca.AddRoot();

        using var key = CertificateAuthorityRoots.CreateKey();
        using var reference = CertificateAuthorityRoots.CreateRoot(key, "mesh.test", new X500DistinguishedName("CN=reference"), DateTimeOffset.UtcNow, TimeSpan.FromDays(1));
        var expected = RootProfile.Describe(reference);
        Assert.Contains("subjectAltName not critical URIs [spiffe://mesh.test] DNS []", expected);
        foreach (var id in new[] { "root-1", rotated })
        {
            using var onDisk = X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(data.Path, "ca", id + ".crt.pem")));
            Assert.Equal(expected, RootProfile.Describe(onDisk));
            Assert.Equal($"O=MeshKit, CN=MeshKit Root CA mesh.test {id}", onDisk.Subject);
            Assert.InRange(onDisk.NotAfter.ToUniversalTime(), DateTime.UtcNow.AddYears(10).AddDays(-2), DateTime.UtcNow.AddYears(10).AddDays(2));
        }
    }
}
