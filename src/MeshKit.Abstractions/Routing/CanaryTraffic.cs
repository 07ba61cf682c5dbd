using System.Collections.Immutable;
using System.Text.Json.Serialization;

namespace MeshKit.Routing;

/// <summary>
/// What a workload tells the control service of its calls on canary routes (<c>POST /v1/workloads/self/traffic</c>): per
/// destination, route and subset, the requests, failures and a latency histogram since its last report. Bounded: at most
/// <see cref="MaxRoutes"/> entries, each histogram of <see cref="LatencyHistogram.BucketCount"/> buckets.
/// </summary>
/// <param name="Routes">The figures, one entry per destination, route and subset.</param>
public sealed record CanaryTrafficReport([property: JsonPropertyName("routes")] IReadOnlyList<CanaryRouteTraffic> Routes)
{
    /// <summary>The most entries one report may hold.</summary>
    public const int MaxRoutes = 256;
}

/// <summary>One destination's route and subset in a <see cref="CanaryTrafficReport"/>.</summary>
/// <param name="Destination">The destination as the caller names it (<c>orders</c>, <c>orders.payments</c>).</param>
/// <param name="Route">The route's name.</param>
/// <param name="Subset">The subset that served the calls.</param>
/// <param name="Requests">The calls that ended.</param>
/// <param name="Failures">Those that failed, as the golden metrics count them: a 5xx, a mesh refusal or transport error, a gRPC server error.</param>
/// <param name="Latency">The calls' durations, counted in the buckets of <see cref="LatencyHistogram.BoundsMilliseconds"/>.</param>
public sealed record CanaryRouteTraffic(
    [property: JsonPropertyName("destination")] string Destination,
    [property: JsonPropertyName("route")] string Route,
    [property: JsonPropertyName("subset")] string Subset,
    [property: JsonPropertyName("requests")] long Requests,
    [property: JsonPropertyName("failures")] long Failures,
    [property: JsonPropertyName("latency")] long[] Latency);

/// <summary>
/// The latency histogram both sides of a canary report use: fixed bucket bounds, so reports from many callers add up and
/// a percentile is read from the sum.
/// </summary>
public static class LatencyHistogram
{
    /// <summary>The upper bounds of the buckets in milliseconds; a last bucket holds everything above the last bound.</summary>
    public static readonly ImmutableArray<double> BoundsMilliseconds =
        [1, 2, 5, 10, 20, 50, 100, 150, 200, 300, 400, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 10_000, 30_000];

    /// <summary>The number of buckets: one per bound and one above the last.</summary>
    public static int BucketCount => BoundsMilliseconds.Length + 1;

    /// <summary>Gets the bucket of a duration.</summary>
    /// <param name="milliseconds">The duration in milliseconds.</param>
    /// <returns>The bucket's index.</returns>
    public static int BucketOf(double milliseconds)
    {
        var bounds = BoundsMilliseconds;
        for (var i = 0; i < bounds.Length; i++)
        {
            if (milliseconds <= bounds[i])
            {
                return i;
            }
        }

        return bounds.Length;
    }

    /// <summary>
    /// Estimates a percentile from bucket counts: the bucket where the rank falls, interpolated linearly inside it (the last
    /// bucket, which has no upper bound, answers its lower bound).
    /// </summary>
    /// <param name="counts">The counts per bucket.</param>
    /// <param name="quantile">The quantile, for example 0.99.</param>
    /// <returns>The estimate in milliseconds, or <see langword="null"/> when there are no counts.</returns>
    public static double? Percentile(ReadOnlySpan<long> counts, double quantile)
    {
        long total = 0;
        foreach (var count in counts)
        {
            total += count;
        }

        if (total == 0)
        {
            return null;
        }

        var rank = quantile * total;
        long below = 0;
        var bounds = BoundsMilliseconds;
        for (var i = 0; i < counts.Length; i++)
        {
            if (counts[i] > 0 && below + counts[i] >= rank)
            {
                var lower = i == 0 ? 0 : bounds[i - 1];
                if (i >= bounds.Length)
                {
                    return lower;
                }

                var upper = bounds[i];
                return lower + ((upper - lower) * Math.Clamp((rank - below) / counts[i], 0, 1));
            }

            below += counts[i];
        }

        return bounds[^1];
    }
}
