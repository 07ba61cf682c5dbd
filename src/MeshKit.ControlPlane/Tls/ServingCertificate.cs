using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MeshKit.Identity;
using Microsoft.Extensions.Options;

namespace MeshKit.ControlPlane.Tls;

/// <summary>
/// The control service's own HTTPS certificate: issued by its CA for
/// <c>spiffe://&lt;td&gt;/ns/mesh-system/svc/control-plane</c> plus DNS and IP SANs for its host names. Kept as a cached
/// <see cref="SslStreamCertificateContext"/>, reissued at half its lifetime or when the CA changes, and swapped
/// atomically so handshakes never build a chain.
/// </summary>
internal sealed class ServingCertificate : IDisposable
{
    /// <summary>The service name of the control service in the reserved namespace.</summary>
    public const string ServiceName = "control-plane";

    private readonly CertificateAuthority.CertificateAuthority _ca;
    private readonly ControlPlaneOptions _options;
    private readonly TimeProvider _time;
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly Lock _gate = new();
    private volatile Current? _current;

    public ServingCertificate(CertificateAuthority.CertificateAuthority ca, IOptions<ControlPlaneOptions> options, TimeProvider time)
    {
        _ca = ca;
        _options = options.Value;
        _time = time;
        Id = SpiffeId.Create(_options.TrustDomain, SpiffeId.ReservedNamespace, ServiceName);

        // A new active root means new certificates; drop the cached one so the next handshake gets a fresh one.
        _ca.BundleChanged += _ => _current = null;
    }

    public SpiffeId Id { get; }

    /// <summary>Gets the certificate context for a handshake, renewing it first when it is past half its lifetime.</summary>
    public SslStreamCertificateContext GetContext()
    {
        var current = _current;
        var now = _time.GetUtcNow();
        if (IsCurrent(current, now))
        {
            return current.Context;
        }

        lock (_gate)
        {
            current = _current;
            if (!IsCurrent(current, now))
            {
                current = Issue(now);
                _current = current;
            }

            return current.Context;
        }
    }

    public void Dispose() => _key.Dispose();

    // Issued under the CA's bundle of now: a rotation step that lands while a certificate is being issued must not leave
    // the old chain (say, one that still leads to a removed root) in use until the renewal point.
    private bool IsCurrent([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] Current? current, DateTimeOffset now) =>
        current is not null && now < current.RenewAt && ReferenceEquals(current.Bundle, _ca.Bundle);

    private Current Issue(DateTimeOffset now)
    {
        var dns = new List<string> { "localhost" };
        var ips = new List<IPAddress> { IPAddress.Loopback, IPAddress.IPv6Loopback };
        var machine = Environment.MachineName.ToLowerInvariant();
        if (!string.IsNullOrEmpty(machine) && !dns.Contains(machine))
        {
            dns.Add(machine);
        }

        foreach (var name in _options.HostNames)
        {
            if (IPAddress.TryParse(name, out var ip))
            {
                ips.Add(ip);
            }
            else if (!string.IsNullOrWhiteSpace(name))
            {
                dns.Add(name.Trim());
            }
        }

        // The serving certificate lives as long as workload certificates, but at least a minute so that a 1-second
        // test lifetime does not reissue on nearly every handshake.
        var lifetime = _options.CertificateLifetime < TimeSpan.FromMinutes(1) ? TimeSpan.FromMinutes(1) : _options.CertificateLifetime;
        // During a CA rotation overlap the chain also leads to the root that does not issue, so that a workload deployed with
        // a trust-bundle file holding either root alone can reach the control service (docs/operations.md, CA rotation).
        var issued = _ca.Issue(Id, new PublicKey(_key), lifetime, dns, ips, chainToEveryRoot: true);
        using var publicOnly = issued.Leaf;
        var withKey = publicOnly.CopyWithPrivateKey(_key);
        var intermediates = new X509Certificate2Collection();
        intermediates.ImportFromPem(issued.ChainPem);
        intermediates.RemoveAt(0);
        var context = SslStreamCertificateContext.Create(withKey, intermediates, offline: true);
        var renewAt = now + ((withKey.NotAfter.ToUniversalTime() - now.UtcDateTime) / 2);
        return new Current(context, renewAt, issued.Bundle);
    }

    private sealed record Current(SslStreamCertificateContext Context, DateTimeOffset RenewAt, TrustBundle Bundle);
}
