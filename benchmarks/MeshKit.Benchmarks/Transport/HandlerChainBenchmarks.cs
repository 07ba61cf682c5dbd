using System.Net;
using BenchmarkDotNet.Attributes;
using MeshKit.Benchmarks.Support;

namespace MeshKit.Benchmarks.Transport;

/// <summary>
/// One request through a whole IHttpClientFactory client ending in an in-memory terminal that yields: the mesh client
/// (every MeshKit handler) against a plain client (the factory's own handlers only). Mesh cost per request = the difference.
/// The mesh client's primary handler (MeshTransportHandler, which hands the request to a pooled SocketsHttpHandler) is
/// the part replaced by the terminal; its own per-request work is measured in <see cref="StageBenchmarks"/>.
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
