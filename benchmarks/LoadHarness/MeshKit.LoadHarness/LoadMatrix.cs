using System.Globalization;

namespace MeshKit.LoadHarness;

/// <summary>One measurement of one topology at one concurrency.</summary>
internal sealed record Sample(
    string Topology,
    int Concurrency,
    int Repeat,
    double Rps,
    double P50Ms,
    double P90Ms,
    double P99Ms,
    double CpuMsPer1kRequests,
    double MaxRssMb,
    string LargestProcess,
    long Requests,
    long Errors,
    double MachineBusyPercent,
    double OutsideTopologyBusyPercent,
    double? CallerAllocatedBytesPerRequest = null,
    double? UpstreamAllocatedBytesPerRequest = null)
{
    /// <summary>Gets the bytes allocated per request by the caller and the upstream together (both .NET processes).</summary>
    public double? AllocatedBytesPerRequest => CallerAllocatedBytesPerRequest + UpstreamAllocatedBytesPerRequest;
}

/// <summary>
/// The measurement loop: every topology runs at once, and for each repeat and concurrency the topologies are measured one
/// after the other in an order that rotates, so that a noisy moment on the shared machine hurts one topology no more
/// than another, and ratios between topologies are taken from measurements minutes apart at most.
/// </summary>
internal static class LoadMatrix
{
    public static async Task<List<Sample>> RunAsync(HarnessOptions o, IReadOnlyList<Topology> topologies, CancellationToken cancellationToken)
    {
        var samples = new List<Sample>();
        var total = o.Repeats * o.Concurrencies.Count * topologies.Count;
        var done = 0;
        for (var repeat = 0; repeat < o.Repeats; repeat++)
        {
            for (var ci = 0; ci < o.Concurrencies.Count; ci++)
            {
                var concurrency = o.Concurrencies[ci];
                var shift = (repeat + ci) % topologies.Count;
                var order = topologies.Skip(shift).Concat(topologies.Take(shift)).ToList();
                foreach (var topology in order)
                {
                    var sample = await MeasureAsync(o, topology, concurrency, repeat, cancellationToken);
                    samples.Add(sample);
                    done++;
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"[{done,3}/{total}] r{repeat} c={concurrency,-3} {topology.Name,-16} {sample.Rps,9:F0} rps  p50 {sample.P50Ms,7:F3}  p90 {sample.P90Ms,7:F3}  p99 {sample.P99Ms,7:F3} ms  {sample.CpuMsPer1kRequests,6:F0} CPU ms/1k  {sample.AllocatedBytesPerRequest,6:F0} B/req  {sample.MaxRssMb,5:F0} MB ({sample.LargestProcess})  errors {sample.Errors}  machine {sample.MachineBusyPercent:F0}% busy, {sample.OutsideTopologyBusyPercent:F0}% outside the topology"));
                }
            }
        }

        return samples;
    }

    private static async Task<Sample> MeasureAsync(HarnessOptions o, Topology topology, int concurrency, int repeat, CancellationToken cancellationToken)
    {
        foreach (var p in topology.Processes)
        {
            if (p.HasExited)
            {
                throw new InvalidOperationException($"{p.Name} has exited; see {o.Work}/logs/{p.Name}.log.");
            }
        }

        if (o.WarmupSeconds > 0)
        {
            await Wrk.RunAsync(topology.CallerAddress, concurrency, o.WarmupSeconds, o.Work, cancellationToken);
        }

        foreach (var p in topology.Processes)
        {
            p.ResetPeakRss();
        }

        // Allocated bytes are read outside the CPU window, so the reads' own CPU is not counted either.
        var callerAllocatedBefore = await AllocatedBytes.ReadAsync(topology.CallerAllocatedAddress, cancellationToken);
        var upstreamAllocatedBefore = await AllocatedBytes.ReadAsync(topology.UpstreamAllocatedAddress, cancellationToken);
        using var profilers = o.Profile ? Profilers.Attach(o, topology, concurrency, repeat) : null;
        var cpuBefore = topology.Processes.Select(p => p.CpuMilliseconds()).ToArray();
        var machineBefore = MachineCpu.Read();
        var result = await Wrk.RunAsync(topology.CallerAddress, concurrency, o.DurationSeconds, o.Work, cancellationToken);
        var machineAfter = MachineCpu.Read();
        var cpuAfter = topology.Processes.Select(p => p.CpuMilliseconds()).ToArray();
        var callerAllocated = await AllocatedBytes.ReadAsync(topology.CallerAllocatedAddress, cancellationToken) - callerAllocatedBefore;
        var upstreamAllocated = await AllocatedBytes.ReadAsync(topology.UpstreamAllocatedAddress, cancellationToken) - upstreamAllocatedBefore;

        var cpuMs = 0.0;
        for (var i = 0; i < cpuBefore.Length; i++)
        {
            cpuMs += cpuAfter[i] - cpuBefore[i];
        }

        var (largest, rss) = topology.Processes.Select(p => (p.Name, Rss: p.PeakRssMegabytes())).MaxBy(x => x.Rss);
        var (busyMs, totalMs) = MachineCpu.Delta(machineBefore, machineAfter);
        var requests = Math.Max(1, result.Requests);
        return new Sample(
            topology.Name,
            concurrency,
            repeat,
            result.Rps,
            result.P50Ms,
            result.P90Ms,
            result.P99Ms,
            cpuMs / requests * 1000.0,
            rss,
            largest,
            result.Requests,
            result.Errors,
            100.0 * busyMs / totalMs,
            100.0 * Math.Max(0, busyMs - cpuMs) / totalMs,
            (double)callerAllocated / requests,
            (double)upstreamAllocated / requests);
    }
}

/// <summary>Reads a load-harness app's <c>GC.GetTotalAllocatedBytes(precise: true)</c> from its <c>/_bench/allocated</c>.</summary>
internal static class AllocatedBytes
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(10) };

    public static async Task<long> ReadAsync(Uri address, CancellationToken cancellationToken)
    {
        var text = await Http.GetStringAsync(address, cancellationToken);
        return long.Parse(text, NumberStyles.None, CultureInfo.InvariantCulture);
    }
}

/// <summary>Whole-machine CPU time from /proc/stat, to show how busy the shared machine was during a measurement.</summary>
internal static class MachineCpu
{
    public static (double Busy, double Total) Read()
    {
        var first = File.ReadLines("/proc/stat").First();
        var values = first.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();

        // user nice system idle iowait irq softirq steal (guest times are already inside user and nice).
        var total = values.Take(8).Sum();
        var idle = values[3] + values[4];
        return ((total - idle) * 1000.0 / ManagedProcess.TicksPerSecond, total * 1000.0 / ManagedProcess.TicksPerSecond);
    }

    public static (double BusyMs, double TotalMs) Delta((double Busy, double Total) before, (double Busy, double Total) after) =>
        (after.Busy - before.Busy, Math.Max(1, after.Total - before.Total));
}

/// <summary>dotnet-trace and dotnet-counters attached to every .NET process of a topology for one measured run (--profile).</summary>
internal sealed class Profilers : IDisposable
{
    private readonly List<ManagedProcess> _tools = [];

    public static Profilers Attach(HarnessOptions o, Topology topology, int concurrency, int repeat)
    {
        var folder = Path.Combine(o.Work, "profiles");
        Directory.CreateDirectory(folder);
        var tools = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".dotnet", "tools");
        var profilers = new Profilers();
        var duration = TimeSpan.FromSeconds(o.DurationSeconds).ToString(@"dd\:hh\:mm\:ss", CultureInfo.InvariantCulture);
        foreach (var p in topology.Processes.Where(p => !p.Name.Contains("haproxy", StringComparison.Ordinal)))
        {
            var stem = Path.Combine(folder, $"{p.Name}-c{concurrency}-r{repeat}");
            profilers._tools.Add(ManagedProcess.Start($"dotnet-trace.{p.Name}", Path.Combine(tools, "dotnet-trace"), ["collect", "-p", p.Pid.ToString(CultureInfo.InvariantCulture), "--profile", "dotnet-sampled-thread-time,gc-collect", "--duration", duration, "-o", stem + ".nettrace"], Path.Combine(o.Work, "logs")));
            profilers._tools.Add(ManagedProcess.Start($"dotnet-counters.{p.Name}", Path.Combine(tools, "dotnet-counters"), ["collect", "-p", p.Pid.ToString(CultureInfo.InvariantCulture), "--counters", "System.Runtime", "--duration", duration, "--format", "csv", "-o", stem + ".counters.csv"], Path.Combine(o.Work, "logs")));
        }

        return profilers;
    }

    public void Dispose()
    {
        // The tools stop by themselves after --duration; wait for them to write their files, then make sure they are gone.
        foreach (var t in _tools)
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!t.HasExited && DateTime.UtcNow < deadline)
            {
                Thread.Sleep(100);
            }

            t.Dispose();
        }
    }
}
