using System.Net;
using BenchmarkDotNet.Attributes;
using MeshKit.Benchmarks.Support;

namespace MeshKit.Benchmarks.Transport;

/// <summary>
/// One request through a whole IHttpClientFactory client ending in an in-memory terminal that yields: the mesh client
/// (MeshKit's whole call path: entry, route, resilience, endpoint choice, attempt, pooled transport) against a plain client
/// (the factory's own handlers only). Mesh cost per request = the difference. Only the pooled connections' sockets and
/// TLS are replaced by the terminal.
/// </summary>
[MemoryDiagnoser]
public class HandlerChainBenchmarks : TelemetryToggle
{
    private MeshClientFixture _fixture = null!;

    [GlobalSetup]
    public void Setup()
    {
        StartTelemetry();
        _fixture = new MeshClientFixture();
        _fixture.WarmAsync().GetAwaiter().GetResult();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _fixture.Dispose();
        StopTelemetry();
    }

    [Benchmark(Baseline = true)]
    public async Task<HttpStatusCode> PlainFactoryClient()
    {
        using var response = await _fixture.Baseline.GetAsync(MeshClientFixture.BaselineUri);
        return response.StatusCode;
    }

    [Benchmark]
    public async Task<HttpStatusCode> MeshClient()
    {
        using var response = await _fixture.Mesh.GetAsync(MeshClientFixture.MeshUri);
        return response.StatusCode;
    }
}
