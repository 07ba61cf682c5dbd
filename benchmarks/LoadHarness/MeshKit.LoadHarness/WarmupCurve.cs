using System.Diagnostics;
using System.Globalization;

namespace MeshKit.LoadHarness;

/// <summary>One 1 s wrk run of a warm-up curve: when it ended (seconds since the caller was launched) and its rate.</summary>
internal sealed record WarmupWindow(double EndSeconds, double Rps, long Errors);

/// <summary>
/// How one topology warms up: right after its processes are launched and ready, and before any other load, it is driven at
/// concurrency 64 in back-to-back 1 s wrk runs. Steady is the median rate of the last 10 runs (the last half of a shorter
/// curve); warm-up is the time from launching the caller to the end of the first run at 90 % of steady or more whose
/// next run is also there (one lucky second does not count). Resolution: one run, about 1 s.
/// </summary>
internal sealed record WarmupCurve(
    string Topology,
    int Concurrency,
    double ReadySeconds,
    double SteadyRps,
    double SecondsTo90Percent,
    IReadOnlyList<WarmupWindow> Windows)
{
    public const double Threshold = 0.90;

    public static async Task<WarmupCurve> MeasureAsync(HarnessOptions o, Topology topology, CancellationToken cancellationToken)
    {
        var concurrency = HarnessOptions.WarmupCurveConcurrency;
        double Since(long timestamp) => Stopwatch.GetElapsedTime(topology.CallerLaunchedAt, timestamp).TotalSeconds;
        var windows = new List<WarmupWindow>(o.WarmupCurveSeconds);
        for (var i = 0; i < o.WarmupCurveSeconds; i++)
        {
            var result = await Wrk.RunAsync(topology.CallerAddress, concurrency, 1, o.Work, cancellationToken);
            windows.Add(new WarmupWindow(Math.Round(Since(Stopwatch.GetTimestamp()), 2), Math.Round(result.GoodRps, 0), result.Errors));
        }

        var (steady, seconds) = Analyze(windows);
        return new WarmupCurve(topology.Name, concurrency, Math.Round(Since(topology.CallerReadyAt), 2), Math.Round(steady, 0), seconds, windows);
    }

    /// <summary>Steady rate and seconds to 90 % of it, from the windows of one curve.</summary>
    public static (double SteadyRps, double SecondsTo90Percent) Analyze(IReadOnlyList<WarmupWindow> windows)
    {
        var tail = Math.Clamp(windows.Count / 2, 1, 10);
        var steady = Median(windows.Skip(windows.Count - tail).Select(w => w.Rps));
        var bar = Threshold * steady;
        for (var i = 0; i < windows.Count; i++)
        {
            if (windows[i].Rps >= bar && (i + 1 == windows.Count || windows[i + 1].Rps >= bar))
            {
                return (steady, windows[i].EndSeconds);
            }
        }

        // Unreachable: at least half of the tail is at or above its median.
        return (steady, windows[^1].EndSeconds);
    }

    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"{Topology,-20} ready {ReadySeconds,5:F1} s, steady {SteadyRps,7:F0} rps, 90 % at {SecondsTo90Percent,5:F1} s; first runs: {string.Join(" ", Windows.Take(8).Select(w => w.Rps.ToString("F0", CultureInfo.InvariantCulture)))}");

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        var mid = sorted.Count / 2;
        return sorted.Count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
