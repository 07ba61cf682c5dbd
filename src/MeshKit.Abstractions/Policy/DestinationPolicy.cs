using System.Collections.Frozen;
using System.Collections.Immutable;
using MeshKit.Routing;

namespace MeshKit.Policy;

/// <summary>The traffic policy of one destination, with every default filled in. Immutable.</summary>
public sealed record DestinationPolicy
{
    /// <summary>Gets the destination name (<c>*</c> for the defaults).</summary>
    public required string Destination { get; init; }

    /// <summary>Gets the total timeout of a call, retries included. Default 30 s.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Gets the timeout of each attempt. Default 10 s.</summary>
    public TimeSpan AttemptTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Gets the idle timeout of a response body: once the response headers have arrived, a body (a stream) that delivers
    /// no data for this long is ended, and reading it fails naming this setting. <see cref="TimeSpan.Zero"/> (the default)
    /// turns it off: a stream then lives until the caller, the server or the connection ends it.
    /// </summary>
    public TimeSpan IdleTimeout { get; init; }

    /// <summary>Gets the retry policy.</summary>
    public RetryPolicy Retry { get; init; } = new();

    /// <summary>Gets the concurrency limits.</summary>
    public ConcurrencyPolicy Concurrency { get; init; } = new();

    /// <summary>Gets the outlier detection settings.</summary>
    public OutlierPolicy OutlierDetection { get; init; } = new();

    /// <summary>Gets the load balancer. Default <see cref="LoadBalancerKind.PeakEwma"/>.</summary>
    public LoadBalancerKind LoadBalancer { get; init; } = LoadBalancerKind.PeakEwma;

    /// <summary>Gets the latency a failed attempt counts as for the balancer, so a fast-failing endpoint does not look fast. Default 1 s.</summary>
    public TimeSpan FailurePenalty { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Gets the metadata key that names subsets. Default <c>version</c>.</summary>
    public string SubsetKey { get; init; } = "version";

    /// <summary>Gets the ordered routes.</summary>
    public ImmutableArray<RoutePolicy> Routes { get; init; } = [];
}
