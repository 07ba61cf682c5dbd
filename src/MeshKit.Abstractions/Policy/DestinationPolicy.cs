using System.Collections.Frozen;
using System.Collections.Immutable;
using MeshKit.Routing;

namespace MeshKit.Policy;

/// <summary>Which requests are retried and how.</summary>
public sealed record RetryPolicy
{
    /// <summary>Gets the most retries after the first attempt (0 disables retries). Default 2.</summary>
    public int MaxRetries { get; init; } = 2;

    /// <summary>Gets whether every method is retried, or only idempotent ones (GET, HEAD, OPTIONS, TRACE, PUT, DELETE). Default idempotent only.</summary>
    public bool RetryAllMethods { get; init; }

    /// <summary>Gets whether connection failures (refused, reset, TLS failures) are retried. Default true.</summary>
    public bool OnConnectFailure { get; init; } = true;

    /// <summary>Gets whether 5xx answers are retried. Default true.</summary>
    public bool OnServerError { get; init; } = true;

    /// <summary>Gets whether attempt timeouts are retried. Default true.</summary>
    public bool OnTimeout { get; init; } = true;

    /// <summary>Gets the first retry delay; later ones grow exponentially with jitter. Default 25 ms.</summary>
    public TimeSpan BaseDelay { get; init; } = TimeSpan.FromMilliseconds(25);

    /// <summary>Gets the longest retry delay. Default 1 s.</summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Gets the retry budget: retries may add at most this share of extra requests. Default 0.2 (the library's default is 0.1).</summary>
    public double BudgetRatio { get; init; } = 0.2;

    /// <summary>Gets the number of requests in the window below which the budget is not enforced (the floor). Default 10.</summary>
    public int BudgetMinimumThroughput { get; init; } = 10;

    /// <summary>Gets the budget's sliding window. Default 10 s.</summary>
    public TimeSpan BudgetWindow { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>Envoy-style circuit breaking: how many requests to a destination may be under way or queued.</summary>
public sealed record ConcurrencyPolicy
{
    /// <summary>Gets the most requests under way at once. Default 1024 (Envoy's default).</summary>
    public int MaxRequests { get; init; } = 1024;

    /// <summary>Gets the most requests waiting for a slot; beyond that, requests fail fast. Default 0.</summary>
    public int MaxQueue { get; init; }
}

/// <summary>The per-endpoint breaker: consecutive failures eject an endpoint for a while.</summary>
public sealed record OutlierPolicy
{
    /// <summary>Gets whether outlier detection is on. Default true.</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>Gets the consecutive failures (5xx or connection failures) that eject an endpoint. Default 5 (Envoy's default).</summary>
    public int ConsecutiveFailures { get; init; } = 5;

    /// <summary>
    /// Gets the consecutive transport failures (refused, reset, a failed TLS handshake, a connection that died mid-request:
    /// nothing complete answered) that eject an endpoint. Default 1: a crashed instance is ejected on the first call that finds it gone, instead of lingering because
    /// the balancer's failure penalty keeps it from being tried again.
    /// </summary>
    public int ConsecutiveConnectFailures { get; init; } = 1;

    /// <summary>Gets the base ejection time; the n-th ejection lasts n times this. Default 30 s (Envoy's default).</summary>
    public TimeSpan BaseEjectionTime { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Gets the longest ejection. Default 5 minutes.</summary>
    public TimeSpan MaxEjectionTime { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Gets the largest share of a subset's endpoints that may be ejected at once, in percent. Default 50. One endpoint may
    /// always be ejected when the subset has two or more; the last healthy endpoint never is.
    /// </summary>
    public int MaxEjectionPercent { get; init; } = 50;
}

/// <summary>How an endpoint is chosen among the healthy endpoints of the chosen subset.</summary>
public enum LoadBalancerKind
{
    /// <summary>Power of two choices over peak-EWMA latency times in-flight requests, with a failure penalty. The default.</summary>
    PeakEwma,

    /// <summary>Round robin.</summary>
    RoundRobin,
}

/// <summary>The traffic policy of one destination, with every default filled in. Immutable.</summary>
public sealed record DestinationPolicy
{
    /// <summary>Gets the destination name (<c>*</c> for the defaults).</summary>
    public required string Destination { get; init; }

    /// <summary>Gets the total timeout of a call, retries included. Default 30 s.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Gets the timeout of each attempt. Default 10 s.</summary>
    public TimeSpan AttemptTimeout { get; init; } = TimeSpan.FromSeconds(10);

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

/// <summary>A validated, precomputed traffic policy; swapped whole on reload.</summary>
public sealed class PolicySnapshot
{
    internal PolicySnapshot(
        DestinationPolicy defaults,
        FrozenDictionary<string, DestinationPolicy> destinations,
        string? subsetHeader,
        Authorization.MeshAuthorizationPolicy authorization,
        string version)
    {
        Authorization = authorization;
        Defaults = defaults;
        Destinations = destinations;
        SubsetHeader = subsetHeader;
        Version = version;
    }

    /// <summary>Gets the policy of destinations that have none of their own.</summary>
    public DestinationPolicy Defaults { get; }

    /// <summary>Gets the destinations with a policy of their own.</summary>
    public FrozenDictionary<string, DestinationPolicy> Destinations { get; }

    /// <summary>Gets the header that lets a tester force a subset (<c>x-mesh-subset</c> by default), or <see langword="null"/> when off.</summary>
    public string? SubsetHeader { get; }

    /// <summary>Gets the serving side's authorization rules (<c>Mesh:Authorization</c>).</summary>
    public Authorization.MeshAuthorizationPolicy Authorization { get; }

    /// <summary>Gets a short hash of the policy's content, the same wherever the same policy is loaded.</summary>
    public string Version { get; }

    /// <summary>Gets the policy of a destination.</summary>
    /// <param name="destination">The destination host (<c>orders</c>).</param>
    /// <returns>Its policy, or the defaults.</returns>
    public DestinationPolicy For(string destination) =>
        Destinations.TryGetValue(destination, out var policy) ? policy : Defaults;
}
