using MeshKit.Tests.Identity;
using MeshKit.ControlChannel;
using System.Security.Cryptography.X509Certificates;
using MeshKit.Hosting;
using MeshKit.Identity;
using MeshKit.Testing;
using MeshKit.Tests.Hosting;

namespace MeshKit.Tests.ControlChannel;

/// <summary>
/// Where the renewal point falls, as a function of the certificate, the clock and the draw from the mesh's random source
/// (the renewal loop that waits for it is in <see cref="RenewalLoopTests"/>; rotation on the wire in <see cref="RotationTests"/>).
/// </summary>
[Trait("Area", "Identity")]
public sealed class RenewalScheduleTests : IDisposable
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromHours(1);
    private readonly X509Certificate2 _root = TestCertificates.CreateRootCa();

    // Whole seconds: certificate times carry no fractions.
    private readonly DateTimeOffset _issued = DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds());

    [Theory]
    [InlineData(0.0, 24)]
    [InlineData(0.25, 27)]
    [InlineData(0.5, 30)]
    [InlineData(0.75, 33)]
    public void The_renewal_point_is_the_renewal_fraction_of_the_lifetime_moved_by_up_to_the_jitter_either_way(double draw, double minutes)
    {
        // Fraction 0.5, jitter 0.1: a draw u from the mesh's random source renews at 0.5 + 0.1 × (2u - 1) of the lifetime.
        var identity = Identity(_issued, _issued + Lifetime, receivedAt: _issued);

        var delay = CertificateRenewalService.RenewalDelay(identity, _issued, Options(0.5, 0.1), new MeshRandom(new ScriptedRandom(draw)));

        Assert.Equal(minutes, delay.TotalMinutes, 6);
    }

    [Fact]
    public void The_lifetime_counts_from_when_the_certificate_arrived_not_from_a_backdated_NotBefore()
    {
        var identity = Identity(_issued - TimeSpan.FromMinutes(30), _issued + Lifetime, receivedAt: _issued);

        var delay = CertificateRenewalService.RenewalDelay(identity, _issued, Options(0.5, 0), new MeshRandom(new ScriptedRandom(0.5)));

        Assert.Equal(30, delay.TotalMinutes, 6);
    }

    [Fact]
    public void The_wait_is_measured_from_now_and_a_renewal_point_already_passed_means_renew_at_once()
    {
        var identity = Identity(_issued, _issued + Lifetime, receivedAt: _issued);
        var options = Options(0.5, 0);

        Assert.Equal(10, CertificateRenewalService.RenewalDelay(identity, _issued + TimeSpan.FromMinutes(20), options, new MeshRandom(new ScriptedRandom(0.5))).TotalMinutes, 6);
        Assert.Equal(TimeSpan.Zero, CertificateRenewalService.RenewalDelay(identity, _issued + TimeSpan.FromMinutes(50), options, new MeshRandom(new ScriptedRandom(0.5))));
    }

    [Theory]
    [InlineData(0.5, 0.1)]
    [InlineData(0.3, 0.25)]
    [InlineData(0.74, 0.25)]
    [InlineData(0.9, 0.05)]
    public void Every_draw_renews_inside_the_lifetime_at_settings_the_validator_accepts(double fraction, double jitter)
    {
        var identity = Identity(_issued, _issued + Lifetime, receivedAt: _issued);
        var options = Options(fraction, jitter);
        var failures = new MeshOptionsValidator().Validate(null, new MeshOptions { Identity = options }).Failures ?? [];
        Assert.DoesNotContain(failures, f => f.Contains(":Identity:", StringComparison.Ordinal));

        foreach (var draw in new[] { 0.0, 0.5, Math.BitDecrement(1.0) })
        {
            var delay = CertificateRenewalService.RenewalDelay(identity, _issued, options, new MeshRandom(new ScriptedRandom(draw)));
            Assert.InRange(delay, Lifetime * (fraction - jitter) - TimeSpan.FromMilliseconds(1), Lifetime * (fraction + jitter));
            Assert.True(delay > TimeSpan.Zero && delay < Lifetime, $"renews at {delay} of a {Lifetime} lifetime");
        }
    }

    public void Dispose() => _root.Dispose();

    private static MeshIdentityOptions Options(double fraction, double jitter) => new() { RenewalFraction = fraction, RenewalJitter = jitter };

    private WorkloadIdentity Identity(DateTimeOffset notBefore, DateTimeOffset notAfter, DateTimeOffset receivedAt)
    {
        var id = SpiffeId.Create("mesh.local", "default", "orders");
        var certificate = TestCertificates.CreateSvid(_root, id.Value, notBefore, notAfter);
        return new WorkloadIdentity(id, certificate, [], TrustBundle.Create([_root]), receivedAt);
    }
}
