using System.Globalization;
using System.Text;

namespace MeshKit.LoadHarness;

/// <summary>
/// latest.md: the figures of one run as tables for docs/benchmarks.md: every run with ratios against direct-mtls, the bytes
/// allocated per request, each topology's warm-up, the goals of issue 17 and of issue 18's gRPC pair (and, for comparison
/// with earlier runs, of issue 9). A goal's figure is the median of the figure computed repeat by repeat (the two topologies of a pair are
/// measured within one rotation, minutes apart at most), with its range; the figure of the medians is shown beside it.
/// </summary>
internal static class Report
{
    /// <summary>The like-for-like hand-wired floor of each mesh topology: the same OpenTelemetry setup, or none.</summary>
    private static readonly Dictionary<string, string> Floors = new()
    {
        ["meshkit"] = "direct-mtls-h2-otel",
        ["meshkit-notrace"] = "direct-mtls-h2",
        ["meshkit-grpc"] = "direct-grpc-mtls",
    };

    public static string Write(string path, LatestResults latest, RawResults raw)
    {
        var md = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        void Line(string text = "") => md.Append(text).Append('\n');
        RunRow? Row(string t, int c) => latest.Runs.FirstOrDefault(r => r.Topology == t && r.Concurrency == c);

        Line($"Machine: {latest.Machine}");
        Line();
        var curveText = raw.WarmupCurveSeconds > 0 ? $"; each topology first driven for {raw.WarmupCurveSeconds} s right after its start, for its warm-up curve" : string.Empty;
        Line($"Command: `{latest.Command}` ({raw.DurationSeconds} s per measurement after a {raw.WarmupSeconds} s warm-up, {raw.Repeats} repeats, medians{curveText}; run {raw.StartedAt:yyyy-MM-dd HH:mm} to {raw.FinishedAt:HH:mm} UTC)");
        Line();
        Line("| topology | concurrency | req/s | × direct-mtls | p50 ms | p90 ms | p99 ms | × direct-mtls (p99) | CPU ms / 1k req | × direct-mtls (CPU) | max RSS MB | machine busy outside the topology |");
        Line("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in latest.Runs)
        {
            var floor = Row("direct-mtls", r.Concurrency);
            var outside = Median(raw.Samples.Where(s => s.Topology == r.Topology && s.Concurrency == r.Concurrency).Select(s => s.OutsideTopologyBusyPercent));
            Line(string.Create(inv, $"| {r.Topology} | {r.Concurrency} | {r.Rps:F0} | {Ratio(r.Rps, floor?.Rps)} | {r.P50Ms:F3} | {r.P90Ms:F3} | {r.P99Ms:F3} | {Ratio(r.P99Ms, floor?.P99Ms)} | {r.CpuMsPer1kRequests:F1} | {Ratio(r.CpuMsPer1kRequests, floor?.CpuMsPer1kRequests)} | {r.MaxRssMb:F1} | {outside:F0} % |"));
        }

        if (latest.Runs.Any(r => r.AllocatedBytesPerRequest is not null))
        {
            Line();
            Line("Bytes allocated per request (`GC.GetTotalAllocatedBytes` of each .NET process before and after the measured run, divided by the requests served; medians; haproxy and the control service are not counted):");
            Line();
            Line("| topology | concurrency | caller B / req | upstream B / req | caller + upstream B / req | − its hand-wired floor |");
            Line("|---|---:|---:|---:|---:|---:|");
            foreach (var r in latest.Runs.Where(r => r.AllocatedBytesPerRequest is not null))
            {
                var a = r.AllocatedBytesPerRequest!;
                var mesh = Floors.TryGetValue(r.Topology, out var floorName) && Row(floorName, r.Concurrency)?.AllocatedBytesPerRequest is { } f
                    ? string.Create(inv, $"{a.Total - f.Total:+#,0;-#,0;0} (vs {floorName})")
                    : "–";
                Line(string.Create(inv, $"| {r.Topology} | {r.Concurrency} | {a.Caller:#,0} | {a.Upstream:#,0} | {a.Total:#,0} | {mesh} |"));
            }
        }

        if (raw.WarmupCurves is { Count: > 0 } curves)
        {
            Line();
            Line(string.Create(inv, $"Warm-up, each topology measured right after its own start (before any other load reached it) at concurrency {curves[0].Concurrency}, in back-to-back 1 s wrk runs; steady = median of the last {Math.Clamp(curves[0].Windows.Count / 2, 1, 10)} runs; warm-up = from launching the caller to the end of the first run at ≥ 90 % of steady whose next run is also there (resolution about 1 s):"));
            Line();
            Line("| topology | caller answering after s | steady req/s | warm-up to 90 % s | × direct-mtls-h2-otel | × direct-mtls-h2 | req/s of the first 10 runs |");
            Line("|---|---:|---:|---:|---:|---:|---|");
            double? WarmupOf(string t) => curves.FirstOrDefault(c => c.Topology == t)?.SecondsTo90Percent;
            foreach (var c in curves)
            {
                var first = string.Join(", ", c.Windows.Take(10).Select(w => w.Rps.ToString("F0", inv)));
                Line(string.Create(inv, $"| {c.Topology} | {c.ReadySeconds:F1} | {c.SteadyRps:F0} | {c.SecondsTo90Percent:F1} | {Ratio(c.SecondsTo90Percent, WarmupOf("direct-mtls-h2-otel"))} | {Ratio(c.SecondsTo90Percent, WarmupOf("direct-mtls-h2"))} | {first} |"));
            }
        }

        // A table whose topologies were all left out of the run (--topologies) is left out too; a table with some of them
        // shows the rest as "not measured".
        void GoalTable(string title, IEnumerable<Goal> goals, params (string Mesh, string Floor)[] warmupPairs)
        {
            var rows = new List<string>();
            var measuredAny = false;
            foreach (var goal in goals)
            {
                double? OfMedians(string t, int c) => Row(t, c) is { } row ? goal.Metric.OfRow(row) : null;
                var ofMedians = goal.Figure(OfMedians);
                var perRepeat = new List<double>();
                for (var rep = 0; rep < raw.Repeats; rep++)
                {
                    var r = rep;
                    double? One(string t, int c) => raw.Samples.FirstOrDefault(s => s.Topology == t && s.Concurrency == c && s.Repeat == r) is { } s ? goal.Metric.OfSample(s) : null;
                    if (goal.Figure(One) is { } v)
                    {
                        perRepeat.Add(v);
                    }
                }

                double? value = perRepeat.Count > 0 ? Median(perRepeat) : null;
                measuredAny |= value is not null;
                var shown = value is { } x
                    ? perRepeat.Count > 1 ? $"{goal.Format(x)} ({goal.Format(perRepeat.Min())} to {goal.Format(perRepeat.Max())})" : goal.Format(x)
                    : "not measured";
                var verdict = value is { } y && goal.Met is { } met ? (met(y) ? "met" : "**missed**") : "–";
                rows.Add($"| {goal.Name} | {goal.Target} | {shown} | {(ofMedians is { } m ? goal.Format(m) : "–")} | {verdict} |");
            }

            // Warm-up is measured once per topology (a fresh start each), so it has no repeats and no range.
            if (raw.WarmupCurves is { Count: > 0 } curves)
            {
                double? SecondsOf(string t) => curves.FirstOrDefault(c => c.Topology == t)?.SecondsTo90Percent;
                foreach (var (mesh, floor) in warmupPairs)
                {
                    var ratio = Div(SecondsOf(mesh), SecondsOf(floor));
                    measuredAny |= ratio is not null;
                    var text = ratio is { } v ? string.Create(inv, $"{v:F2}× ({SecondsOf(mesh):F1} s ÷ {SecondsOf(floor):F1} s; one fresh start each)") : "not measured";
                    rows.Add($"| warm-up to 90 % of steady req/s at {HarnessOptions.WarmupCurveConcurrency}, {mesh} ÷ {floor} | ≤ 1.5× | {text} | – | {(ratio is { } r ? (r <= 1.5 ? "met" : "**missed**") : "–")} |");
                }
            }

            if (!measuredAny)
            {
                return;
            }

            Line();
            Line($"| goal ({title}) | target | this run: median of the figure repeat by repeat (range) | the figure of the medians | met? |");
            Line("|---|---|---:|---:|---|");
            foreach (var row in rows)
            {
                Line(row);
            }
        }

        GoalTable("issue 17", Issue17Goals(), ("meshkit", "direct-mtls-h2-otel"), ("meshkit-notrace", "direct-mtls-h2"), ("meshkit", "direct-mtls-h2"));
        GoalTable("issue 18, the gRPC pair: the throughput and CPU goals of the HTTP pair without tracing", Issue18GrpcGoals(), ("meshkit-grpc", "direct-grpc-mtls"));
        GoalTable("issue 9, kept for comparison with earlier runs", Issue9Goals());

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
            if (detail.ReplicaSets is { Count: > 0 } sets)
            {
                ReplicaSetTable(sets);
            }
        }

        // Issue 19, item 6: one control service and replicas sharing a Consul double, side by side.
        void ReplicaSetTable(IReadOnlyList<ReplicaSetFigures> sets)
        {
            string Column(ReplicaSetFigures s) => s.Replicas == 1 ? "1 control service" : string.Create(inv, $"{s.Replicas} replicas, one Consul double");
            void Row(string name, Func<ReplicaSetFigures, string> value) => Line($"| {name} | {string.Join(" | ", sets.Select(value))} |");
            string Push(ReplicaSetFigures s, int watchers, Func<PushFigures, string> value) =>
                s.Pushes.FirstOrDefault(p => p.Watchers == watchers) is { } p ? value(p) : "–";
            Line();
            Line($"| control service, load spread over the replicas | {string.Join(" | ", sets.Select(Column))} |");
            Line($"|---|{string.Concat(sets.Select(_ => "---:|"))}");
            Row(string.Create(inv, $"CSR signatures per second (concurrency {detail.CsrConcurrency}, kept-alive connections)"), s => string.Create(inv, $"{s.CsrSignaturesPerSecond:F0}"));
            Row("CSR signed / failed in the measured run", s => string.Create(inv, $"{s.CsrSigned} / {s.CsrFailed} in {s.CsrSeconds:F1} s"));
            Row("CPU per signature: control service(s) / load generator (µs)", s => string.Create(inv, $"{s.ServiceCpuUsPerSignature:F0} / {s.HarnessCpuUsPerSignature:F0}"));
            foreach (var watchers in sets.SelectMany(s => s.Pushes).Select(p => p.Watchers).Distinct().Order())
            {
                Row(string.Create(inv, $"push to {watchers} waiting watchers: p99 (p50 / max)"), s => Push(s, watchers, p => string.Create(inv, $"**{p.P99Ms:F0} ms** ({p.P50Ms:F0} / {p.MaxMs:F0})")));
                Row(string.Create(inv, $"push to {watchers}: p99 round by round (ms)"), s => Push(s, watchers, p => string.Join(", ", p.P99MsPerRound.Select(v => v.ToString("F0", inv)))));
                Row(string.Create(inv, $"push to {watchers}: the policy write answered in (ms)"), s => Push(s, watchers, p => string.Join(", ", p.ChangeRequestMsPerRound.Select(v => v.ToString("F0", inv)))));
                Row(string.Create(inv, $"push to {watchers}: until all watch again (ms, 100 ms resolution)"), s => Push(s, watchers, p => string.Join(", ", p.RearmMsPerRound.Select(v => v.ToString("F0", inv)))));
                Row(string.Create(inv, $"{watchers} watchers: RSS with them waiting (MB, all replicas) / per 1,000 watchers"), s => Push(s, watchers, p => string.Create(inv, $"{p.RssMb:F0} / **{p.MbPer1000Watchers:F1} MB**")));
                Row(string.Create(inv, $"push to {watchers}: CPU per watcher woken, control service(s) / load generator (µs)"), s => Push(s, watchers, p => string.Create(inv, $"{p.ServiceCpuUsPerWatcher:F0} / {p.HarnessCpuUsPerWatcher:F0}")));
                Row(string.Create(inv, $"{watchers} watchers: time to connect the new ones (s)"), s => Push(s, watchers, p => string.Create(inv, $"{p.ConnectSeconds:F1}")));
            }

            Row("RSS without watchers, after the sign load (MB, all replicas)", s => string.Create(inv, $"{s.RssMbWithoutWatchers:F0}"));
            Row("load average (1, 5, 15 min) at start / end", s => $"{s.LoadAverageAtStart} / {s.LoadAverageAtEnd}");
        }

        var mdPath = Path.Combine(Path.GetDirectoryName(path)!, Path.GetFileNameWithoutExtension(path) + ".md");
        File.WriteAllText(mdPath, md.ToString());
        return mdPath;
    }

    // Issue 17's goals table, figure by figure. Rows marked "–" are context (the same comparison with tracing the other
    // way), not goals.
    private static IEnumerable<Goal> Issue17Goals() =>
    [
        new("meshkit ÷ direct-mtls-h2-otel, req/s at 64", "≥ 0.90×", Metric.Rps, f => Div(f("meshkit", 64), f("direct-mtls-h2-otel", 64)), v => v >= 0.90),
        new("meshkit-notrace ÷ direct-mtls-h2, req/s at 64", "≥ 0.92×", Metric.Rps, f => Div(f("meshkit-notrace", 64), f("direct-mtls-h2", 64)), v => v >= 0.92),
        new("meshkit ÷ direct-mtls-h2-otel, p50 at 1", "≤ 1.10×", Metric.P50, f => Div(f("meshkit", 1), f("direct-mtls-h2-otel", 1)), v => v <= 1.10),
        new("meshkit-notrace ÷ direct-mtls-h2, p50 at 1", "–", Metric.P50, f => Div(f("meshkit-notrace", 1), f("direct-mtls-h2", 1)), null),
        new("meshkit ÷ direct-mtls-h2-otel, p99 at 64", "≤ 1.15×", Metric.P99, f => Div(f("meshkit", 64), f("direct-mtls-h2-otel", 64)), v => v <= 1.15),
        new("meshkit-notrace ÷ direct-mtls-h2, p99 at 64", "–", Metric.P99, f => Div(f("meshkit-notrace", 64), f("direct-mtls-h2", 64)), null),
        new("CPU ms per 1,000 requests at 64, meshkit − direct-mtls-h2-otel", "≤ +10", Metric.Cpu, f => Sub(f("meshkit", 64), f("direct-mtls-h2-otel", 64)), v => v <= 10, "ms"),
        new("CPU ms per 1,000 requests at 64, meshkit-notrace − direct-mtls-h2", "–", Metric.Cpu, f => Sub(f("meshkit-notrace", 64), f("direct-mtls-h2", 64)), null, "ms"),
        new("meshkit ÷ sidecar-haproxy, req/s at 64", "≥ 2.5×", Metric.Rps, f => Div(f("meshkit", 64), f("sidecar-haproxy", 64)), v => v >= 2.5),
        new("bytes allocated per mesh call, client and server together, tracing off (meshkit-notrace − direct-mtls-h2 at 64)", "≤ 512 B", Metric.Allocated, f => Sub(f("meshkit-notrace", 64), f("direct-mtls-h2", 64)), v => v <= 512, "B"),
        new("the same with tracing on (meshkit − direct-mtls-h2-otel at 64)", "–", Metric.Allocated, f => Sub(f("meshkit", 64), f("direct-mtls-h2-otel", 64)), null, "B"),
        new("largest process's working set at 64, meshkit − direct-mtls-h2-otel", "≤ +10 MB", Metric.Rss, f => Sub(f("meshkit", 64), f("direct-mtls-h2-otel", 64)), v => v <= 10, "MB"),
    ];

    // Issue 18's gRPC pair: a unary call (1 kB reply) instead of GET /data, both sides without tracing (meshkit-grpc runs
    // with Mesh:Telemetry:ConfigureOpenTelemetry=false, like meshkit-notrace), so it takes the goals of the untraced HTTP
    // pair (meshkit-notrace ÷ direct-mtls-h2 ≥ 0.92×) and the CPU goal of issue 17 (≤ +10 ms per 1,000 requests).
    private static IEnumerable<Goal> Issue18GrpcGoals() =>
    [
        new("meshkit-grpc ÷ direct-grpc-mtls, req/s at 64", "≥ 0.92×", Metric.Rps, f => Div(f("meshkit-grpc", 64), f("direct-grpc-mtls", 64)), v => v >= 0.92),
        new("CPU ms per 1,000 requests at 64, meshkit-grpc − direct-grpc-mtls", "≤ +10", Metric.Cpu, f => Sub(f("meshkit-grpc", 64), f("direct-grpc-mtls", 64)), v => v <= 10, "ms"),
        new("meshkit-grpc ÷ direct-grpc-mtls, p50 at 1", "–", Metric.P50, f => Div(f("meshkit-grpc", 1), f("direct-grpc-mtls", 1)), null),
        new("meshkit-grpc ÷ direct-grpc-mtls, p99 at 64", "–", Metric.P99, f => Div(f("meshkit-grpc", 64), f("direct-grpc-mtls", 64)), null),
        new("bytes allocated per gRPC mesh call, client and server together (meshkit-grpc − direct-grpc-mtls at 64)", "–", Metric.Allocated, f => Sub(f("meshkit-grpc", 64), f("direct-grpc-mtls", 64)), null, "B"),
        new("largest process's working set at 64, meshkit-grpc − direct-grpc-mtls", "–", Metric.Rss, f => Sub(f("meshkit-grpc", 64), f("direct-grpc-mtls", 64)), null, "MB"),
        new("for scale: direct-grpc-mtls ÷ direct-mtls-h2, req/s at 64 (the gRPC floor against the HTTP floor)", "–", Metric.Rps, f => Div(f("direct-grpc-mtls", 64), f("direct-mtls-h2", 64)), null),
    ];

    private static IEnumerable<Goal> Issue9Goals() =>
    [
        new("meshkit throughput vs direct-mtls-h2 at 64", "≥ 0.90×", Metric.Rps, f => Div(f("meshkit", 64), f("direct-mtls-h2", 64)), v => v >= 0.90),
        new("meshkit throughput vs direct-http at 64", "≥ 0.85×", Metric.Rps, f => Div(f("meshkit", 64), f("direct-http", 64)), v => v >= 0.85),
        new("meshkit p99 vs direct-mtls-h2 at 64", "≤ 1.10×", Metric.P99, f => Div(f("meshkit", 64), f("direct-mtls-h2", 64)), v => v <= 1.10),
        new("meshkit throughput vs sidecar-haproxy at 64", "≥ 2.5×", Metric.Rps, f => Div(f("meshkit", 64), f("sidecar-haproxy", 64)), v => v >= 2.5),
        new("meshkit p50 at 1 vs direct-mtls-h2", "≤ 1.15×", Metric.P50, f => Div(f("meshkit", 1), f("direct-mtls-h2", 1)), v => v <= 1.15),
        new("meshkit p50 at 1 vs sidecar-haproxy", "≤ 0.60×", Metric.P50, f => Div(f("meshkit", 1), f("sidecar-haproxy", 1)), v => v <= 0.60),
        new("mesh CPU: meshkit − direct-mtls-h2, CPU ms per 1k requests at 64", "≤ 20", Metric.Cpu, f => Sub(f("meshkit", 64), f("direct-mtls-h2", 64)), v => v <= 20, "ms"),
        new("added working set vs direct-mtls-h2 (largest process) at 64", "≤ 10 MB", Metric.Rss, f => Sub(f("meshkit", 64), f("direct-mtls-h2", 64)), v => v <= 10, "MB"),
    ];

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

/// <summary>Which figure a goal reads, from a median row and from one repeat's sample.</summary>
internal sealed record Metric(Func<RunRow, double?> OfRow, Func<Sample, double?> OfSample)
{
    public static readonly Metric Rps = new(r => r.Rps, s => s.Rps);
    public static readonly Metric P50 = new(r => r.P50Ms, s => s.P50Ms);
    public static readonly Metric P99 = new(r => r.P99Ms, s => s.P99Ms);
    public static readonly Metric Cpu = new(r => r.CpuMsPer1kRequests, s => s.CpuMsPer1kRequests);
    public static readonly Metric Rss = new(r => r.MaxRssMb, s => s.MaxRssMb);
    public static readonly Metric Allocated = new(r => r.AllocatedBytesPerRequest?.Total, s => s.AllocatedBytesPerRequest);
}

/// <summary>
/// One goal: a figure computed from a lookup of (topology, concurrency) → value, either a ratio ("×") or a difference in
/// <paramref name="Unit"/>; <paramref name="Met"/> is null for a figure shown without a target.
/// </summary>
internal sealed record Goal(string Name, string Target, Metric Metric, Func<Func<string, int, double?>, double?> Figure, Func<double, bool>? Met, string Unit = "×")
{
    public string Format(double value) => Unit switch
    {
        "×" => string.Create(CultureInfo.InvariantCulture, $"{value:F2}×"),
        "B" => string.Create(CultureInfo.InvariantCulture, $"{value:+#,0;-#,0;0} B"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{value:+0.0;-0.0;0.0} {Unit}"),
    };
}
