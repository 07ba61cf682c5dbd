using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace MeshKit.LoadHarness;

/// <summary>One row of latest.json: the median of the repeats of one topology at one concurrency.</summary>
internal sealed record RunRow(
    [property: JsonPropertyName("topology")] string Topology,
    [property: JsonPropertyName("concurrency")] int Concurrency,
    [property: JsonPropertyName("rps")] double Rps,
    [property: JsonPropertyName("p50_ms")] double P50Ms,
    [property: JsonPropertyName("p90_ms")] double P90Ms,
    [property: JsonPropertyName("p99_ms")] double P99Ms,
    [property: JsonPropertyName("cpu_ms_per_1k_requests")] double CpuMsPer1kRequests,
    [property: JsonPropertyName("max_rss_mb")] double MaxRssMb,
    [property: JsonPropertyName("allocated_bytes_per_request"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] AllocationRow? AllocatedBytesPerRequest = null);

/// <summary>
/// Bytes allocated per request (<c>GC.GetTotalAllocatedBytes</c> read before and after the measured run, divided by the
/// requests wrk completed): the caller, the upstream, and the two together (the median of the per-repeat sums).
/// </summary>
internal sealed record AllocationRow(
    [property: JsonPropertyName("caller")] double Caller,
    [property: JsonPropertyName("upstream")] double Upstream,
    [property: JsonPropertyName("total")] double Total);

/// <summary>One topology's warm-up, measured right after it started (see <see cref="WarmupCurve"/>).</summary>
internal sealed record WarmupRow(
    [property: JsonPropertyName("topology")] string Topology,
    [property: JsonPropertyName("concurrency")] int Concurrency,
    [property: JsonPropertyName("warmup_seconds_to_90pct")] double WarmupSecondsTo90Percent,
    [property: JsonPropertyName("ready_seconds")] double ReadySeconds,
    [property: JsonPropertyName("steady_rps")] double SteadyRps);

/// <summary>
/// The control service in latest.json: the first two fields as earlier runs wrote them (one replica; the push at the first
/// watcher count, 1,000 by default); issue 19 added the rest (the push at the largest count, memory, three replicas).
/// </summary>
internal sealed record ControlPlaneRow(
    [property: JsonPropertyName("csr_signatures_per_s")] double CsrSignaturesPerSecond,
    [property: JsonPropertyName("policy_push_p99_ms_1000_watchers")] double PolicyPushP99Ms1000Watchers,
    [property: JsonPropertyName("csr_service_cpu_us_per_signature"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? CsrServiceCpuUsPerSignature = null,
    [property: JsonPropertyName("policy_push_watchers"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? PolicyPushWatchers = null,
    [property: JsonPropertyName("policy_push_p99_ms"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? PolicyPushP99Ms = null,
    [property: JsonPropertyName("memory_mb_per_1000_watchers"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? MemoryMbPer1000Watchers = null,
    [property: JsonPropertyName("csr_signatures_per_s_3_replicas"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? CsrSignaturesPerSecond3Replicas = null,
    [property: JsonPropertyName("policy_push_p99_ms_3_replicas"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? PolicyPushP99Ms3Replicas = null,
    [property: JsonPropertyName("memory_mb_per_1000_watchers_3_replicas"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? MemoryMbPer1000Watchers3Replicas = null,
    [property: JsonPropertyName("load_average_at_start"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? LoadAverageAtStart = null)
{
    /// <summary>Gets the row for measured figures.</summary>
    public static ControlPlaneRow From(ControlPlaneFigures f)
    {
        var one = f.ReplicaSets?.FirstOrDefault(s => s.Replicas == 1);
        var three = f.ReplicaSets?.FirstOrDefault(s => s.Replicas == 3);
        var onePush = one?.Pushes[^1];
        var threePush = three?.Pushes[^1];
        return new ControlPlaneRow(
            Math.Round(f.CsrSignaturesPerSecond, 0),
            Math.Round(f.PushP99Ms, 1),
            one is null ? null : Math.Round(one.ServiceCpuUsPerSignature, 0),
            onePush?.Watchers,
            onePush is null ? null : Math.Round(onePush.P99Ms, 1),
            onePush is null ? null : Math.Round(onePush.MbPer1000Watchers, 1),
            three is null ? null : Math.Round(three.CsrSignaturesPerSecond, 0),
            threePush is null ? null : Math.Round(threePush.P99Ms, 1),
            threePush is null ? null : Math.Round(threePush.MbPer1000Watchers, 1),
            f.ReplicaSets?.FirstOrDefault()?.LoadAverageAtStart);
    }
}

/// <summary>latest.json, in the shape issue 9 asks for; issue 17 added the allocations of each run and the warm-up list.</summary>
internal sealed record LatestResults(
    [property: JsonPropertyName("machine")] string Machine,
    [property: JsonPropertyName("command")] string Command,
    [property: JsonPropertyName("runs")] IReadOnlyList<RunRow> Runs,
    [property: JsonPropertyName("control_plane")] ControlPlaneRow? ControlPlane,
    [property: JsonPropertyName("warmup"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<WarmupRow>? Warmup = null);

/// <summary>Everything measured, repeat by repeat, for whoever wants to check the medians (latest-raw.json).</summary>
internal sealed record RawResults(
    string Machine,
    string Command,
    DateTimeOffset StartedAt,
    DateTimeOffset FinishedAt,
    int DurationSeconds,
    int WarmupSeconds,
    int Repeats,
    IReadOnlyList<Sample> Samples,
    ControlPlaneFigures? ControlPlane,
    int WarmupCurveSeconds = 0,
    IReadOnlyList<WarmupCurve>? WarmupCurves = null);

internal static class Results
{
    // Relaxed escaping: the files are read by people too ("2.6.12-1+deb12u4", not "\u002B").
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static List<RunRow> Medians(IReadOnlyList<string> topologyOrder, IReadOnlyList<int> concurrencies, IReadOnlyList<Sample> samples)
    {
        var rows = new List<RunRow>();
        foreach (var topology in topologyOrder)
        {
            foreach (var c in concurrencies)
            {
                var set = samples.Where(s => s.Topology == topology && s.Concurrency == c).ToList();
                if (set.Count == 0)
                {
                    continue;
                }

                rows.Add(new RunRow(
                    topology,
                    c,
                    Math.Round(Median(set.Select(s => s.Rps)), 0),
                    Math.Round(Median(set.Select(s => s.P50Ms)), 3),
                    Math.Round(Median(set.Select(s => s.P90Ms)), 3),
                    Math.Round(Median(set.Select(s => s.P99Ms)), 3),
                    Math.Round(Median(set.Select(s => s.CpuMsPer1kRequests)), 1),
                    Math.Round(Median(set.Select(s => s.MaxRssMb)), 1),
                    Allocations(set)));
            }
        }

        return rows;
    }

    public static List<WarmupRow> WarmupRows(IReadOnlyList<WarmupCurve> curves) =>
        [.. curves.Select(c => new WarmupRow(c.Topology, c.Concurrency, Math.Round(c.SecondsTo90Percent, 1), Math.Round(c.ReadySeconds, 1), c.SteadyRps))];

    private static AllocationRow? Allocations(List<Sample> set)
    {
        var measured = set.Where(s => s.AllocatedBytesPerRequest is not null).ToList();
        return measured.Count == 0
            ? null
            : new AllocationRow(
                Math.Round(Median(measured.Select(s => s.CallerAllocatedBytesPerRequest!.Value)), 0),
                Math.Round(Median(measured.Select(s => s.UpstreamAllocatedBytesPerRequest!.Value)), 0),
                Math.Round(Median(measured.Select(s => s.AllocatedBytesPerRequest!.Value)), 0));
    }

    public static void Write(string path, LatestResults latest, RawResults raw)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, JsonSerializer.Serialize(latest, Json) + "\n");
        var rawPath = Path.Combine(Path.GetDirectoryName(path)!, Path.GetFileNameWithoutExtension(path) + "-raw.json");
        File.WriteAllText(rawPath, JsonSerializer.Serialize(raw, Json) + "\n");
        Console.WriteLine($"Wrote {path} and {rawPath}.");
    }

    public static (LatestResults Latest, RawResults Raw) Read(string path)
    {
        var rawPath = Path.Combine(Path.GetDirectoryName(path)!, Path.GetFileNameWithoutExtension(path) + "-raw.json");
        var latest = JsonSerializer.Deserialize<LatestResults>(File.ReadAllText(path), Json) ?? throw new InvalidDataException($"{path} is empty.");
        var raw = JsonSerializer.Deserialize<RawResults>(File.ReadAllText(rawPath), Json) ?? throw new InvalidDataException($"{rawPath} is empty.");
        return (latest, raw);
    }

    public static string DescribeMachine()
    {
        string Read(string file, string key)
        {
            try
            {
                var line = File.ReadLines(file).FirstOrDefault(l => l.StartsWith(key, StringComparison.Ordinal));
                return line is null ? "?" : line[(line.IndexOf(key[^1]) + 1)..].Trim().Trim('"');
            }
            catch (IOException)
            {
                return "?";
            }
        }

        var os = Read("/etc/os-release", "PRETTY_NAME=");
        var cpu = Read("/proc/cpuinfo", "model name\t:");
        var memGiB = double.Parse(Read("/proc/meminfo", "MemTotal:").Split(' ')[0], CultureInfo.InvariantCulture) / 1024 / 1024;
        var kernel = File.Exists("/proc/sys/kernel/osrelease") ? File.ReadAllText("/proc/sys/kernel/osrelease").Trim() : "?";
        return string.Create(CultureInfo.InvariantCulture,
            $"{os}, kernel {kernel}; {Environment.ProcessorCount} vCPU ({cpu}); {memGiB:F0} GiB RAM; .NET {RuntimeInformation.FrameworkDescription.Replace(".NET ", string.Empty, StringComparison.Ordinal)}; {Tool("haproxy", "-v", 2)}; {Tool("wrk", "-v", 1)}; loopback only; shared machine (other jobs may run)");
    }

    private static string Tool(string name, string flag, int versionField)
    {
        try
        {
            var info = new System.Diagnostics.ProcessStartInfo(name, flag) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            using var p = System.Diagnostics.Process.Start(info)!;
            var text = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
            p.WaitForExit(5000);
            var first = text.Split('\n').FirstOrDefault(l => l.Trim().Length > 0)?.Trim() ?? name;
            var parts = first.Split(' ');
            return parts.Length > versionField ? $"{name} {parts[versionField]}" : first;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return $"{name} (not found)";
        }
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        var mid = sorted.Count / 2;
        return sorted.Count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
