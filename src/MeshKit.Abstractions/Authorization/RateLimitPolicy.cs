using System.Collections.Immutable;

namespace MeshKit.Authorization;

/// <summary>A per-caller rate limit on the requests a rule allows: a token bucket per caller identity.</summary>
/// <param name="PermitsPerSecond">Sustained requests per second per caller.</param>
/// <param name="Burst">Requests a caller may make at once above the sustained rate.</param>
public sealed record RateLimitPolicy(double PermitsPerSecond, int Burst)
{
    /// <summary>The default of <see cref="MaxCallers"/>.</summary>
    public const int DefaultMaxCallers = 100_000;

    /// <summary>
    /// Gets the most callers whose buckets the rule tracks at once. Callers whose bucket is full again (idle) are dropped
    /// to make room; when every tracked caller is still active, a new caller is refused with 429 (fails closed) until
    /// one falls idle. Default <see cref="DefaultMaxCallers"/>.
    /// </summary>
    public int MaxCallers { get; init; } = DefaultMaxCallers;
}
