using BenchmarkDotNet.Attributes;
using MeshKit.Benchmarks.Support;
using MeshKit.Discovery;
using MeshKit.Identity;
using MeshKit.Transport;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Benchmarks.Transport;

/// <summary>
/// The per-request lookups of the client-side stages, one by one, as the handlers do them. The policy decisions (route
/// match, subset pick, endpoint choice, authorization) are in <see cref="Routing.PolicyStageBenchmarks"/>.
/// </summary>
public class StageBenchmarks : TelemetryToggle
{
    private MeshClientFixture _fixture = null!;
    private MeshDestination.Cache _destinations = null!;
    private MeshEndpointRegistry _registry = null!;
    private MeshConnectionPools _pools = null!;
    private WorkloadIdentitySource _identity = null!;
    private MeshDestination _destination = null!;
    private MeshEndpoint _endpoint = null!;

    [GlobalSetup]
    public void Setup()
    {
        StartTelemetry();
        _fixture = new MeshClientFixture();
        _fixture.WarmAsync().GetAwaiter().GetResult();
        var services = _fixture.Services;
        _destinations = services.GetRequiredService<MeshDestination.Cache>();
        _registry = services.GetRequiredService<MeshEndpointRegistry>();
        _pools = services.GetRequiredService<MeshConnectionPools>();
        _identity = services.GetRequiredService<WorkloadIdentitySource>();
        _destination = _destinations.Get(MeshClientFixture.MeshUri)!;
        _endpoint = _registry.GetAsync("upstream", CancellationToken.None).AsTask().GetAwaiter().GetResult().Endpoints[0];
        _ = _pools.Get(_destination, _endpoint);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _fixture.Dispose();
        StopTelemetry();
    }

    /// <summary>MeshClientHandler: is this a mesh call, and to which destination (and so which expected SPIFFE ID)?</summary>
    [Benchmark]
    public object? DestinationLookup() => _destinations.Get(MeshClientFixture.MeshUri);

    /// <summary>CallPath: fail closed unless the workload identity is valid now (once per call and once per attempt).</summary>
    [Benchmark]
    public object IdentityValidNow() => _identity.GetValid();

    /// <summary>EndpointStage: the destination's current endpoints from discovery (a dictionary read and a field load).</summary>
    [Benchmark]
    public int EndpointSetLookup() => _registry.GetAsync("upstream", CancellationToken.None).Result.Endpoints.Length;

    /// <summary>CallPath: the connection pool of (destination, endpoint).</summary>
    [Benchmark]
    public object PoolLookup() => _pools.Get(_destination, _endpoint);
}
