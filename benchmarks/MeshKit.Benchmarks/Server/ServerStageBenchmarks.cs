using System.Security.Cryptography.X509Certificates;
using BenchmarkDotNet.Attributes;
using MeshKit.Benchmarks.Support;
using MeshKit.Identity;
using MeshKit.Server;
using MeshKit.Telemetry;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace MeshKit.Benchmarks.Server;

/// <summary>
/// The server side's per-request stage that exists today: MeshServerMiddleware, which refuses requests on a connection
/// whose certificates have expired. The caller's identity is read from the connection (set once per handshake).
/// </summary>
public class ServerStageBenchmarks : TelemetryToggle
{
    private MeshClientFixture _fixture = null!;
    private X509Certificate2 _peer = null!;
    private MeshServerMiddleware _middleware = null!;
    private DefaultHttpContext _context = null!;

    [GlobalSetup]
    public void Setup()
    {
        StartTelemetry();
        _fixture = new MeshClientFixture();
        _peer = _fixture.Identity.Issue("caller");
        _middleware = new MeshServerMiddleware(
            static _ => Task.CompletedTask,
            TimeProvider.System,
            _fixture.Services.GetRequiredService<MeshMetrics>(),
            _fixture.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<MeshKit.MeshOptions>>(),
            _fixture.Services.GetRequiredService<WorkloadIdentitySource>(),
            NullLogger<MeshServerMiddleware>.Instance);
        _context = new DefaultHttpContext();
        var connection = new MeshConnection(SpiffeId.Parse("spiffe://mesh.local/ns/default/svc/caller"), _peer, DateTimeOffset.UtcNow.AddDays(1), "01");
        _context.Features.Set(connection);
        _context.Features.Set<IMeshPeerFeature>(connection);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _fixture.Dispose();
        _peer.Dispose();
        StopTelemetry();
    }

    [Benchmark]
    public Task MeshServerMiddlewareOnMeshConnection() => _middleware.InvokeAsync(_context);
}
