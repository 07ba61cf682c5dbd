using System.Collections.Immutable;

namespace MeshKit.Routing;

/// <summary>
/// An automated canary on one route (<c>Routes:&lt;n&gt;:Canary</c>): the control service moves the route's split from the
/// stable subset to the canary subset step by step while the callers' figures for the canary stay within the thresholds,
/// and rolls it back when they do not. Workloads only report their figures for such a route; the analysis runs on central
/// policy (docs/canary.md).
/// </summary>
public sealed record CanaryPolicy
{
    /// <summary>Gets the subset that serves traffic today (<c>v1</c>).</summary>
    public required string StableSubset { get; init; }

    /// <summary>Gets the subset under test (<c>v2</c>).</summary>
    public required string CanarySubset { get; init; }

    /// <summary>Gets the canary's weights in percent of the route's traffic, one per step, rising (<c>10, 20, 50</c>).</summary>
    public required ImmutableArray<int> Steps { get; init; }

    /// <summary>Gets how often the figures are checked, and how long each step lasts at least.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Gets the requests the canary must have served in an interval for a check to count; fewer, and it waits.</summary>
    public int MinRequests { get; init; } = 20;

    /// <summary>Gets the lowest success rate of the canary, in percent, that passes a check.</summary>
    public double MinSuccessRate { get; init; } = 99;

    /// <summary>
    /// Gets how many percentage points the canary's success rate may fall below the stable subset's in the same interval,
    /// or <see langword="null"/> to not compare them.
    /// </summary>
    public double? MaxSuccessRateDrop { get; init; }

    /// <summary>Gets the highest 99th-percentile latency of the canary that passes a check.</summary>
    public TimeSpan MaxP99 { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// Gets how many times the stable subset's 99th-percentile latency the canary's may be, or <see langword="null"/> to not
    /// compare them.
    /// </summary>
    public double? MaxP99Increase { get; init; }

    /// <summary>Gets the failed checks that roll the canary back (not necessarily in a row).</summary>
    public int FailedChecks { get; init; } = 5;

    /// <summary>Gets whether the last step is followed by promotion (all traffic to the canary) rather than a hold at the last weight.</summary>
    public bool Promote { get; init; } = true;
}
