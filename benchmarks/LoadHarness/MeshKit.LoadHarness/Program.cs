// The load harness's orchestrator; benchmarks/run.sh installs its tools, builds, and runs it. See docs/benchmarks.md.
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using MeshKit.LoadHarness;

var options = HarnessOptions.Parse(args);
if (options.ReportOnly)
{
    var (writtenLatest, writtenRaw) = Results.Read(options.Output);
    Console.WriteLine($"Wrote {Report.Write(options.Output, writtenLatest, writtenRaw)}.");
    return;
}

Directory.CreateDirectory(Path.Combine(options.Work, "logs"));
ManagedProcess.TicksPerSecond = ClockTicks();
Console.WriteLine($"Work folder (certificates, configs, process logs): {options.Work}");

// Ctrl+C or SIGTERM (run.sh's trap) ends the run: the finally blocks below kill every process started.
using var stop = new CancellationTokenSource();
using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });

var machine = Results.DescribeMachine();
var started = DateTimeOffset.UtcNow;
List<Sample> samples = [];
List<WarmupCurve> curves = [];
ControlPlaneFigures? controlPlane = null;
Console.WriteLine($"Estimated time: {EstimateMinutes(options):F0} min (load {(options.Load ? "on" : "off")}, control service {(options.ControlPlane ? "on" : "off")}).");

try
{
    await MeasureAsync();
}
catch (OperationCanceledException) when (stop.IsCancellationRequested)
{
    // Every process started was killed by the finally blocks on the way out.
    Console.Error.WriteLine("Stopped before the end; no results were written.");
    Environment.ExitCode = 130;
    return;
}

var rows = Results.Medians(options.Topologies, options.Concurrencies, samples);
var latest = new LatestResults(machine, options.Command, rows, controlPlane is null ? null : ControlPlaneRow.From(controlPlane), curves.Count == 0 ? null : Results.WarmupRows(curves));
var raw = new RawResults(machine, options.Command, started, DateTimeOffset.UtcNow, options.DurationSeconds, options.WarmupSeconds, options.Repeats, samples, controlPlane, options.WarmupCurveSeconds, curves.Count == 0 ? null : curves);
Results.Write(options.Output, latest, raw);
Console.WriteLine($"Wrote {Report.Write(options.Output, latest, raw)} (tables for docs/benchmarks.md).");

foreach (var r in rows)
{
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{r.Topology,-16} c={r.Concurrency,-3} {r.Rps,8:F0} rps  p50 {r.P50Ms,7:F3}  p90 {r.P90Ms,7:F3}  p99 {r.P99Ms,7:F3} ms  {r.CpuMsPer1kRequests,6:F1} CPU ms/1k  {r.AllocatedBytesPerRequest?.Total,6:F0} B/req  {r.MaxRssMb,6:F1} MB"));
}

foreach (var c in curves)
{
    Console.WriteLine(c.Describe());
}

async Task MeasureAsync()
{
    if (options.Load)
    {
        var certificates = BenchCertificates.Create(Path.Combine(options.Work, "certs"));
        var topologies = new List<Topology>();
        try
        {
            // One at a time: with warm-up curves, each topology is driven right after its own start, while the ones
            // started before it sit idle, so its curve is its own cold start and nothing else's load.
            foreach (var name in options.Topologies)
            {
                var sw = Stopwatch.StartNew();
                topologies.Add(await Topology.StartAsync(name, options, certificates, stop.Token));
                Console.WriteLine($"Started {name} ({string.Join(", ", topologies[^1].Processes.Select(p => $"{p.Name}={p.Pid}"))}) in {sw.Elapsed.TotalSeconds:F1} s; caller at {topologies[^1].CallerAddress}");
                if (options.WarmupCurveSeconds > 0)
                {
                    var curve = await WarmupCurve.MeasureAsync(options, topologies[^1], stop.Token);
                    curves.Add(curve);
                    Console.WriteLine($"Warm-up curve: {curve.Describe()}");
                }
            }

            samples = await LoadMatrix.RunAsync(options, topologies, stop.Token);
        }
        finally
        {
            foreach (var t in topologies)
            {
                t.Dispose();
            }
        }
    }

    if (options.ControlPlane)
    {
        controlPlane = await ControlPlaneBench.RunAsync(options, stop.Token);
    }
}

// Measurements, warm-ups and the curves, plus about 10 s to start each topology, 0.5 s per measurement of wrk and
// /proc overhead, and about 2 minutes for the control-service figures.
static double EstimateMinutes(HarnessOptions o)
{
    var seconds = 0.0;
    if (o.Load)
    {
        var t = o.Topologies.Count;
        seconds += t * (10 + o.WarmupCurveSeconds * 1.05);
        seconds += o.Repeats * o.Concurrencies.Count * t * (o.WarmupSeconds + o.DurationSeconds + 0.5);
    }

    if (o.ControlPlane)
    {
        // Per replica set: start, the sign load, and per watcher count its connections (about 2 ms each) and the rounds.
        foreach (var _ in o.Replicas)
        {
            seconds += 15 + o.WarmupSeconds + o.DurationSeconds;
            seconds += o.Watchers * 0.002 + o.WatcherCounts.Count * o.PushRounds * 5;
        }
    }

    return seconds / 60;
}

static double ClockTicks()
{
    try
    {
        using var p = Process.Start(new ProcessStartInfo("getconf", "CLK_TCK") { RedirectStandardOutput = true, UseShellExecute = false })!;
        var text = p.StandardOutput.ReadToEnd().Trim();
        p.WaitForExit(5000);
        return double.Parse(text, CultureInfo.InvariantCulture);
    }
    catch (Exception ex) when (ex is System.ComponentModel.Win32Exception or FormatException)
    {
        return 100;
    }
}
