using MeshKit.Routing;

namespace MeshKit.ControlPlane.Canary;

/// <summary>One subset's figures over an interval, summed over every caller's reports.</summary>
/// <param name="Requests">Calls that ended.</param>
/// <param name="Failures">Calls that failed.</param>
/// <param name="Latency">Their durations per bucket of <see cref="LatencyHistogram"/>.</param>
internal sealed record SubsetFigures(long Requests, long Failures, long[] Latency)
{
    /// <summary>No calls.</summary>
    public static SubsetFigures Empty => new(0, 0, new long[LatencyHistogram.BucketCount]);

    /// <summary>Gets the success rate in percent, or <see langword="null"/> without calls.</summary>
    public double? SuccessRate => Requests == 0 ? null : 100.0 * (Requests - Failures) / Requests;

    /// <summary>Gets the 99th-percentile latency in milliseconds, or <see langword="null"/> without calls.</summary>
    public double? P99Milliseconds => LatencyHistogram.Percentile(Latency, 0.99);
}

/// <summary>
/// The callers' reports of canary routes, kept per calling service, destination, route and subset with the time each
/// arrived, for the analysis to sum over its interval. In memory and bounded: reports older than
/// <see cref="Retention"/> are dropped, and so are entries past <see cref="MaxSeries"/>.
/// </summary>
internal sealed class CanaryTrafficStore(TimeProvider time)
{
    /// <summary>How long reports are kept: the longest interval a canary may have, twice.</summary>
    public static readonly TimeSpan Retention = TimeSpan.FromHours(2);

    /// <summary>The most series (calling service, destination, route, subset) kept.</summary>
    public const int MaxSeries = 4096;

    private readonly Dictionary<SeriesKey, Queue<Sample>> _series = [];
    private readonly Dictionary<SeriesKey, SubsetFigures> _totals = [];
    private long _version;
    private readonly Dictionary<string, DateTimeOffset> _lastReport = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    /// <summary>Gets when the store started hearing reports (this replica's start).</summary>
    public DateTimeOffset Since { get; } = time.GetUtcNow();

    /// <summary>Adds one workload's report.</summary>
    /// <param name="callerService">The calling workload's service key (<c>frontend</c>).</param>
    /// <param name="report">The validated report.</param>
    public void Add(string callerService, CanaryTrafficReport report)
    {
        var now = time.GetUtcNow();
        lock (_lock)
        {
            _lastReport[callerService] = now;
            foreach (var route in report.Routes)
            {
                var key = new SeriesKey(callerService, route.Destination, route.Route, route.Subset);
                if (!_series.TryGetValue(key, out var samples))
                {
                    if (_series.Count >= MaxSeries)
                    {
                        continue;
                    }

                    _series[key] = samples = new Queue<Sample>();
                }

                samples.Enqueue(new Sample(now, route.Requests, route.Failures, route.Latency));
                Prune(samples, now);
                _totals[key] = Add(_totals.GetValueOrDefault(key) ?? SubsetFigures.Empty, new SubsetFigures(route.Requests, route.Failures, route.Latency));
            }

            _version++;
        }
    }

    /// <summary>Gets a number that changes with every report.</summary>
    public long Version
    {
        get
        {
            lock (_lock)
            {
                return _version;
            }
        }
    }

    /// <summary>
    /// Gets every series' totals since this replica started (counters that only grow), which replicas publish to each
    /// other: the leader takes the difference between two checks.
    /// </summary>
    public IReadOnlyList<SharedSeries> Totals()
    {
        lock (_lock)
        {
            return [.. _totals.Select(t => new SharedSeries(t.Key.Caller, t.Key.Destination, t.Key.Route, t.Key.Subset, t.Value.Requests, t.Value.Failures, (long[])t.Value.Latency.Clone()))];
        }
    }

    /// <summary>Adds two subsets' figures.</summary>
    public static SubsetFigures Add(SubsetFigures a, SubsetFigures b)
    {
        var latency = new long[LatencyHistogram.BucketCount];
        for (var i = 0; i < latency.Length; i++)
        {
            latency[i] = (i < a.Latency.Length ? a.Latency[i] : 0) + (i < b.Latency.Length ? b.Latency[i] : 0);
        }

        return new SubsetFigures(a.Requests + b.Requests, a.Failures + b.Failures, latency);
    }

    /// <summary>The figures <paramref name="later"/> has beyond <paramref name="earlier"/> (totals that only grow).</summary>
    public static SubsetFigures Beyond(SubsetFigures later, SubsetFigures earlier)
    {
        var latency = new long[LatencyHistogram.BucketCount];
        for (var i = 0; i < latency.Length; i++)
        {
            latency[i] = Math.Max(0, (i < later.Latency.Length ? later.Latency[i] : 0) - (i < earlier.Latency.Length ? earlier.Latency[i] : 0));
        }

        return new SubsetFigures(Math.Max(0, later.Requests - earlier.Requests), Math.Max(0, later.Failures - earlier.Failures), latency);
    }


    /// <summary>Gets when a calling service's workloads last reported, if ever.</summary>
    public DateTimeOffset? LastReport(string callerService)
    {
        lock (_lock)
        {
            return _lastReport.TryGetValue(callerService, out var at) ? at : null;
        }
    }

    /// <summary>Sums a subset's reports that arrived in (<paramref name="from"/>, <paramref name="to"/>].</summary>
    public SubsetFigures Sum(string callerService, string destination, string route, string subset, DateTimeOffset from, DateTimeOffset to)
    {
        var latency = new long[LatencyHistogram.BucketCount];
        long requests = 0, failures = 0;
        lock (_lock)
        {
            if (_series.TryGetValue(new SeriesKey(callerService, destination, route, subset), out var samples))
            {
                Prune(samples, time.GetUtcNow());
                foreach (var sample in samples)
                {
                    if (sample.At > from && sample.At <= to)
                    {
                        requests += sample.Requests;
                        failures += sample.Failures;
                        for (var i = 0; i < latency.Length; i++)
                        {
                            latency[i] += sample.Latency[i];
                        }
                    }
                }
            }
        }

        return new SubsetFigures(requests, failures, latency);
    }

    private static void Prune(Queue<Sample> samples, DateTimeOffset now)
    {
        while (samples.TryPeek(out var oldest) && now - oldest.At > Retention)
        {
            samples.Dequeue();
        }
    }

    private readonly record struct SeriesKey(string Caller, string Destination, string Route, string Subset);

    private sealed record Sample(DateTimeOffset At, long Requests, long Failures, long[] Latency);
}

/// <summary>One series' totals as a replica publishes them to the others (Consul KV).</summary>
internal sealed record SharedSeries(
    [property: System.Text.Json.Serialization.JsonPropertyName("caller")] string Caller,
    [property: System.Text.Json.Serialization.JsonPropertyName("destination")] string Destination,
    [property: System.Text.Json.Serialization.JsonPropertyName("route")] string Route,
    [property: System.Text.Json.Serialization.JsonPropertyName("subset")] string Subset,
    [property: System.Text.Json.Serialization.JsonPropertyName("requests")] long Requests,
    [property: System.Text.Json.Serialization.JsonPropertyName("failures")] long Failures,
    [property: System.Text.Json.Serialization.JsonPropertyName("latency")] long[] Latency)
{
    public SubsetFigures Figures => new(Requests, Failures, Latency);
}
