using System.Collections.Concurrent;
using MeshKit.Discovery;
using MeshKit.Hosting;
using MeshKit.Identity;
using MeshKit.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshKit.Transport;

/// <summary>
/// Every <see cref="EndpointConnectionPool"/> of this workload, by destination and endpoint. A singleton, so pools
/// (and their warm connections) survive the HttpClientFactory's handler recycling. Pools are retired when the identity
/// changes and disposed when their endpoint leaves discovery.
/// </summary>
internal sealed class MeshConnectionPools : IDisposable
{
    private readonly ConcurrentDictionary<(string Destination, string Endpoint), EndpointConnectionPool> _pools = new();
    private readonly MeshOptions _options;
    private readonly WorkloadIdentitySource _identity;
    private readonly MeshMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    public MeshConnectionPools(
        IOptions<MeshOptions> options,
        WorkloadIdentitySource identity,
        MeshEndpointRegistry registry,
        MeshMetrics metrics,
        TimeProvider time,
        ILogger<EndpointConnectionPool> logger)
    {
        _options = options.Value;
        _identity = identity;
        _metrics = metrics;
        _time = time;
        _logger = logger;
        identity.Changed += _ => RetireAll();
        registry.EndpointsRemoved += Evict;
    }

    /// <summary>Gets or sets the handler a new pool sends through instead of sockets and TLS, by endpoint (tests and benchmarks of the call path).</summary>
    internal Func<MeshEndpoint, HttpMessageHandler>? HandlerOverride { get; set; }

    public EndpointConnectionPool Get(MeshDestination destination, MeshEndpoint endpoint)
    {
        var key = (destination.Host, endpoint.Key);
        if (_pools.TryGetValue(key, out var pool))
        {
            return pool;
        }

        var created = new EndpointConnectionPool(destination, endpoint, _options, _identity, _metrics, _time, _logger, HandlerOverride);
        pool = _pools.GetOrAdd(key, created);
        if (!ReferenceEquals(pool, created))
        {
            created.Dispose();
        }

        return pool;
    }

    public void Dispose()
    {
        foreach (var pool in _pools.Values)
        {
            pool.Dispose();
        }

        _pools.Clear();
    }

    private void RetireAll()
    {
        foreach (var pool in _pools.Values)
        {
            pool.Retire();
        }
    }

    private void Evict(string destination, IReadOnlyCollection<string> endpoints)
    {
        foreach (var endpoint in endpoints)
        {
            if (_pools.TryRemove((destination, endpoint), out var pool))
            {
                pool.Dispose();
            }
        }
    }
}
