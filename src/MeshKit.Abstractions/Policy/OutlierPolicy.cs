using System.Collections.Frozen;
using System.Collections.Immutable;
using MeshKit.Routing;

namespace MeshKit.Policy;

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

    /// <summary>
    /// Gets the gRPC statuses that count as failures of the endpoint (the balancer's failure penalty, outlier detection), as a
    /// 5xx does. Every other status, application errors such as NOT_FOUND included, is a success of the endpoint. Default
    /// UNAVAILABLE only.
    /// </summary>
    public GrpcStatusSet GrpcStatus { get; init; } = GrpcStatusSet.UnavailableOnly;

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
