using System.Security.Cryptography.X509Certificates;
using BenchmarkDotNet.Attributes;
using MeshKit.Benchmarks.Support;
using MeshKit.Identity;

namespace MeshKit.Benchmarks.Identity;

/// <summary>
/// The identity check. MeshKit checks the peer's SVID once per TLS handshake, not per request (connections are pooled);
/// the control service checks the client certificate on every sign and watch request, with a chain build.
/// </summary>
public class IdentityCheckBenchmarks : TelemetryToggle
{
    private const string Id = "spiffe://mesh.local/ns/default/svc/orders";
    private BenchIdentity _ca = null!;
    private X509Certificate2 _peer = null!;
    private DateTimeOffset _now;

    [GlobalSetup]
    public void Setup()
    {
        StartTelemetry();
        _ca = BenchIdentity.Create();
        _peer = _ca.Issue("orders");
        _now = DateTimeOffset.UtcNow;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        StopTelemetry();
        _peer.Dispose();
        _ca.Dispose();
    }

    /// <summary>The strict SPIFFE ID parser on a valid ID.</summary>
    [Benchmark]
    public SpiffeId SpiffeIdParse() => SpiffeId.Parse(Id);

    /// <summary>What the handshake callback does after SslStream built the chain: leaf shape, URI SAN, parse, trust domain.</summary>
    [Benchmark]
    public bool SvidCheckAfterTlsChain() =>
        SvidValidator.Validate(_peer, null, _ca.Bundle, BenchIdentity.TrustDomain, _now, SvidUsage.Server, chainVerified: true).IsValid;

    /// <summary>The same with the chain built against the bundle (the public API; the control service's per-request check).</summary>
    [Benchmark]
    public bool SvidCheckWithChainBuild() =>
        SvidValidator.Validate(_peer, null, _ca.Bundle, BenchIdentity.TrustDomain, _now, SvidUsage.Server).IsValid;
}
