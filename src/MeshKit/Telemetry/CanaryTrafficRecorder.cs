using System.Collections.Concurrent;
using MeshKit.Routing;

namespace MeshKit.Telemetry;

/// <summary>
/// Counts, per destination, route and subset, the attempts on routes that have an automated canary
/// (<c>Routes:&lt;n&gt;:Canary</c>): requests, failures and a latency histogram, for the control service's analysis. Attempts,
/// not logical calls: the analysis judges what the subset's endpoints did, as a destination-side proxy counts for Flagger,
/// and a retry that succeeds elsewhere must not hide a failing canary. Only canary routes pay for it (three interlocked
/// increments an attempt). Bounded to <see cref="CanaryTrafficReport.MaxRoutes"/> series.
/// </summary>
internal sealed class CanaryTrafficRecorder
{
    private readonly ConcurrentDictionary<SeriesKey, Series> _series = new();

    /// <summary>
    /// Counts one attempt on a canary route, as the subset's endpoint saw it: <paramref name="failed"/> as the endpoint's
    /// outcome counts it (a 5xx, a gRPC status of <c>OutlierDetection:GrpcStatus</c>, a transport failure, an attempt timeout).
    /// </summary>
    public void Record(string destination, string route, string? subset, bool failed, double seconds)
    {
        if (subset is null)
        {
            return;
        }

        var key = new SeriesKey(destination, route, subset);
        if (!_series.TryGetValue(key, out var series))
        {
            if (_series.Count >= CanaryTrafficReport.MaxRoutes)
            {
                return;
            }

            series = _series.GetOrAdd(key, static _ => new Series());
        }

        var counters = Volatile.Read(ref series.Current);
        Interlocked.Increment(ref counters.Requests);
        if (failed)
        {
            Interlocked.Increment(ref counters.Failures);
        }

        Interlocked.Increment(ref counters.Latency[LatencyHistogram.BucketOf(seconds * 1000)]);
    }

    /// <summary>Takes the counts since the last take, or <see langword="null"/> when there are none.</summary>
    public CanaryTrafficReport? Take()
    {
        List<CanaryRouteTraffic>? routes = null;
        foreach (var (key, series) in _series)
        {
            var taken = Interlocked.Exchange(ref series.Current, new Counters());
            if (taken.Requests > 0)
            {
                (routes ??= []).Add(new CanaryRouteTraffic(key.Destination, key.Route, key.Subset, taken.Requests, Math.Min(taken.Failures, taken.Requests), taken.Latency));
            }
        }

        return routes is null ? null : new CanaryTrafficReport(routes);
    }

    /// <summary>Puts back counts that could not be sent, so the next report carries them.</summary>
    public void Return(CanaryTrafficReport report)
    {
        foreach (var route in report.Routes)
        {
            var series = _series.GetOrAdd(new SeriesKey(route.Destination, route.Route, route.Subset), static _ => new Series());
            var counters = Volatile.Read(ref series.Current);
            Interlocked.Add(ref counters.Requests, route.Requests);
            Interlocked.Add(ref counters.Failures, route.Failures);
            for (var i = 0; i < route.Latency.Length && i < counters.Latency.Length; i++)
            {
                Interlocked.Add(ref counters.Latency[i], route.Latency[i]);
            }
        }
    }

    private readonly record struct SeriesKey(string Destination, string Route, string Subset);

    private sealed class Series
    {
        public Counters Current = new();
    }

    private sealed class Counters
    {
        public readonly long[] Latency = new long[LatencyHistogram.BucketCount];
        public long Requests;
        public long Failures;
    }
}
