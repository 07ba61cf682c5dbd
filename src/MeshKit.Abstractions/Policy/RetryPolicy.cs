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

    /// <summary>
    /// Gets the gRPC statuses that are retried when a gRPC call ends with one before any response message (a Trailers-Only
    /// answer), whatever <see cref="RetryAllMethods"/> says: gRPC calls are POSTs, and these statuses mean the server did not
    /// do the work. Default UNAVAILABLE only (as Istio's default <c>retryOn</c>).
    /// </summary>
    public GrpcStatusSet GrpcStatus { get; init; } = GrpcStatusSet.UnavailableOnly;

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
