using System.Diagnostics;
using System.Globalization;

namespace MeshKit.LoadHarness;

/// <summary>What one wrk run measured.</summary>
internal sealed record WrkResult(long Requests, double DurationSeconds, long Errors, double P50Ms, double P90Ms, double P99Ms, long StatusErrors)
{
    public double Rps => Requests / DurationSeconds;

    /// <summary>Gets the rate of answers that were not errors (wrk counts a non-2xx/3xx answer as a request and a status error).</summary>
    public double GoodRps => Math.Max(0, Requests - StatusErrors) / DurationSeconds;
}

/// <summary>
/// Runs wrk (closed loop, one thread, <c>c</c> keep-alive connections) with a Lua <c>done</c> hook that prints exact
/// percentiles in microseconds rather than wrk's rounded table.
/// </summary>
internal static class Wrk
{
    private const string Script = """
        done = function(summary, latency, requests)
          local e = summary.errors
          io.write(string.format("WRK_RESULT %d %d %d %d %d %d %d\n",
            summary.requests, summary.duration,
            e.connect + e.read + e.write + e.status + e.timeout,
            latency:percentile(50), latency:percentile(90), latency:percentile(99), e.status))
        end
        """;

    public static async Task<WrkResult> RunAsync(Uri address, int connections, int seconds, string work, CancellationToken cancellationToken)
    {
        var script = Path.Combine(work, "report-v2.lua");
        if (!File.Exists(script))
        {
            await File.WriteAllTextAsync(script, Script, cancellationToken);
        }

        var info = new ProcessStartInfo("wrk") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-t1", $"-c{connections}", $"-d{seconds}s", "--timeout", "5s", "-s", script, address.ToString() })
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException("Could not start wrk.");
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);

        // Bounded: wrk stops itself after -d; give it a generous margin, then kill it.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(seconds + 30));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            throw new TimeoutException($"wrk against {address} did not finish within {seconds + 30} s.");
        }

        var output = await stdout;
        var line = output.Split('\n').FirstOrDefault(l => l.StartsWith("WRK_RESULT ", StringComparison.Ordinal))
            ?? throw new InvalidOperationException($"wrk printed no result (exit {process.ExitCode}): {output} {await stderr}");
        var f = line.Split(' ');
        double Ms(string us) => double.Parse(us, CultureInfo.InvariantCulture) / 1000.0;
        return new WrkResult(
            long.Parse(f[1], CultureInfo.InvariantCulture),
            double.Parse(f[2], CultureInfo.InvariantCulture) / 1_000_000.0,
            long.Parse(f[3], CultureInfo.InvariantCulture),
            Ms(f[4]),
            Ms(f[5]),
            Ms(f[6]),
            long.Parse(f[7], CultureInfo.InvariantCulture));
    }
}
