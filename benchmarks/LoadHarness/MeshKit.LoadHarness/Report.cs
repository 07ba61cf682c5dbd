using System.Globalization;
using System.Text;

namespace MeshKit.LoadHarness;

/// <summary>
/// latest.md: the figures of one run as tables for docs/benchmarks.md, with ratios against direct-mtls and the goals of
/// issue 9. Goal ratios are taken from the medians (as latest.json has them); the range of the same ratio computed
/// repeat by repeat (topologies measured minutes apart) shows how much the shared machine's noise moves it.
/// </summary>
internal static class Report
{
    public static string Write(string path, LatestResults latest, RawResults raw)
    {
        var md = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        void Line(string text = "") => md.Append(text).Append('\n');
        RunRow? Row(string t, int c) => latest.Runs.FirstOrDefault(r => r.Topology == t && r.Concurrency == c);

        Line($"Machine: {latest.Machine}");
        Line();
        Line($"Command: `{latest.Command}` ({raw.DurationSeconds} s per measurement after a {raw.WarmupSeconds} s warm-up, {raw.Repeats} repeats, medians; run {raw.StartedAt:yyyy-MM-dd HH:mm} to {raw.FinishedAt:HH:mm} UTC)");
        Line();
        Line("| topology | concurrency | req/s | × direct-mtls | p50 ms | p90 ms | p99 ms | × direct-mtls (p99) | CPU ms / 1k req | × direct-mtls (CPU) | max RSS MB | machine busy outside the topology |");
        Line("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in latest.Runs)
        {
            var floor = Row("direct-mtls", r.Concurrency);
            var outside = Median(raw.Samples.Where(s => s.Topology == r.Topology && s.Concurrency == r.Concurrency).Select(s => s.OutsideTopologyBusyPercent));
            Line(string.Create(inv, $"| {r.Topology} | {r.Concurrency} | {r.Rps:F0} | {Ratio(r.Rps, floor?.Rps)} | {r.P50Ms:F3} | {r.P90Ms:F3} | {r.P99Ms:F3} | {Ratio(r.P99Ms, floor?.P99Ms)} | {r.CpuMsPer1kRequests:F1} | {Ratio(r.CpuMsPer1kRequests, floor?.CpuMsPer1kRequests)} | {r.MaxRssMb:F1} | {outside:F0} % |"));
        }

        Line();
        Line("| goal (issue 9) | target | this run (ratio of the medians) | the same figure repeat by repeat: median (range) | met? (on the medians) |");
        Line("|---|---|---:|---|---|");
        void Goal(string name, string target, Func<Func<string, int, double?>, double?> figure, Func<double, bool> met, string unit = "×")
        {
            double? OfMedians(string t, int c) => Row(t, c) is { } row ? Pick(row, name) : null;
            var value = figure(OfMedians);
            var perRepeat = new List<double>();
            for (var rep = 0; rep < raw.Repeats; rep++)
            {
                var r = rep;
                double? One(string t, int c) => raw.Samples.FirstOrDefault(s => s.Topology == t && s.Concurrency == c && s.Repeat == r) is { } s ? PickSample(s, name) : null;
                if (figure(One) is { } v)
                {
                    perRepeat.Add(v);
                }
            }

            var range = perRepeat.Count == 0 ? "–" : string.Create(inv, $"{Median(perRepeat):F2} ({perRepeat.Min():F2} to {perRepeat.Max():F2})");
            var shown = value is { } x ? string.Create(inv, $"{x:F2}{(unit == "×" ? "×" : " " + unit)}") : "not measured";
            Line($"| {name} | {target} | {shown} | {range} | {(value is { } y ? (met(y) ? "met" : "**missed**") : "–")} |");
        }

        Goal("meshkit throughput vs direct-mtls-h2 at 64", "≥ 0.90×", f => Div(f("meshkit", 64), f("direct-mtls-h2", 64)), v => v >= 0.90);
        Goal("meshkit throughput vs direct-http at 64", "≥ 0.85×", f => Div(f("meshkit", 64), f("direct-http", 64)), v => v >= 0.85);
        Goal("meshkit p99 vs direct-mtls-h2 at 64", "≤ 1.10×", f => Div(f("meshkit", 64), f("direct-mtls-h2", 64)), v => v <= 1.10);
        Goal("meshkit throughput vs sidecar-haproxy at 64", "≥ 2.5×", f => Div(f("meshkit", 64), f("sidecar-haproxy", 64)), v => v >= 2.5);
        Goal("meshkit p50 at 1 vs direct-mtls-h2", "≤ 1.15×", f => Div(f("meshkit", 1), f("direct-mtls-h2", 1)), v => v <= 1.15);
        Goal("meshkit p50 at 1 vs sidecar-haproxy", "≤ 0.60×", f => Div(f("meshkit", 1), f("sidecar-haproxy", 1)), v => v <= 0.60);
        Goal("mesh CPU: meshkit − direct-mtls-h2, CPU ms per 1k requests at 64", "≤ 20", f => Sub(f("meshkit", 64), f("direct-mtls-h2", 64)), v => v <= 20, "ms");
        Goal("added working set vs direct-mtls-h2 (largest process) at 64", "≤ 10 MB", f => Sub(f("meshkit", 64), f("direct-mtls-h2", 64)), v => v <= 10, "MB");

        if (latest.ControlPlane is { } cp && raw.ControlPlane is { } detail)
        {
            Line();
            Line("| control service | figure |");
            Line("|---|---:|");
            Line(string.Create(inv, $"| CSR signatures per second (join token, concurrency {detail.CsrConcurrency}, {detail.CsrSigned} signed in {detail.CsrSeconds:F1} s, {detail.CsrFailed} failed) | {cp.CsrSignaturesPerSecond:F0} |"));
            Line(string.Create(inv, $"| control-channel push to {detail.Watchers} waiting watchers, p99 from sending the change (`policy_push_p99_ms_1000_watchers`; pushed change: a central policy write (`PUT /v1/policy/{{service}}`), every answer checked to carry its version; {detail.PushRounds} rounds) | {cp.PolicyPushP99Ms1000Watchers:F1} ms |"));
            Line(string.Create(inv, $"| the same, p50 / max | {detail.PushP50Ms:F1} / {detail.PushMaxMs:F1} ms |"));
            Line(string.Create(inv, $"| p99 round by round | {string.Join(", ", detail.PushP99MsPerRound.Select(v => v.ToString("F1", inv)))} ms |"));
            Line(string.Create(inv, $"| admin change request answered in, round by round | {string.Join(", ", detail.ChangeRequestMsPerRound.Select(v => v.ToString("F1", inv)))} ms |"));
            if (detail.RearmMsPerRound is { Count: > 0 } rearm)
            {
                Line(string.Create(inv, $"| from a change until all {detail.Watchers} watch again (100 ms resolution), round by round | {string.Join(", ", rearm.Select(v => v.ToString("F0", inv)))} ms |"));
            }

            Line($"| watchers' connections | {(detail.NewConnectionPerPoll ? "a new mTLS connection per poll (--watch-reconnect)" : "kept alive between polls, as MeshKit's ControlPlaneClient")} |");
        }

        var mdPath = Path.Combine(Path.GetDirectoryName(path)!, Path.GetFileNameWithoutExtension(path) + ".md");
        File.WriteAllText(mdPath, md.ToString());
        return mdPath;
    }

    // Which figure a goal reads: throughput goals read rps, p99 and p50 goals their latency, CPU and memory goals theirs.
    private static double Pick(RunRow r, string goal) =>
        goal.Contains("throughput", StringComparison.Ordinal) ? r.Rps
        : goal.Contains("p99", StringComparison.Ordinal) ? r.P99Ms
        : goal.Contains("p50", StringComparison.Ordinal) ? r.P50Ms
        : goal.Contains("CPU", StringComparison.Ordinal) ? r.CpuMsPer1kRequests
        : r.MaxRssMb;

    private static double PickSample(Sample s, string goal) =>
        Pick(new RunRow(s.Topology, s.Concurrency, s.Rps, s.P50Ms, s.P90Ms, s.P99Ms, s.CpuMsPer1kRequests, s.MaxRssMb), goal);

    private static double? Div(double? a, double? b) => a is { } x && b is { } y && y != 0 ? x / y : null;

    private static double? Sub(double? a, double? b) => a is { } x && b is { } y ? x - y : null;

    private static string Ratio(double value, double? floor) =>
        floor is { } f && f != 0 ? (value / f).ToString("F2", CultureInfo.InvariantCulture) : "–";

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        if (sorted.Count == 0)
        {
            return 0;
        }

        var mid = sorted.Count / 2;
        return sorted.Count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
