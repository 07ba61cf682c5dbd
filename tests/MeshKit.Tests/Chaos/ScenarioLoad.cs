using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;

namespace MeshKit.Tests.Chaos;

/// <summary>What a chaos scenario measured: requests sent, requests failed, the slowest request.</summary>
public sealed record ScenarioResult(string Scenario, int Sent, int Failed, double MaxLatencyMs, double DurationSeconds, IReadOnlyList<string> Errors)
{
    public double SuccessRate => Sent == 0 ? 0 : (double)(Sent - Failed) / Sent;

    public override string ToString() =>
        $"{Scenario}: sent {Sent}, failed {Failed}, max latency {MaxLatencyMs:0.0} ms over {DurationSeconds:0.0} s"
        + (Errors.Count == 0 ? string.Empty : $"; first errors: {string.Join(" | ", Errors.Take(3))}");
}

/// <summary>
/// Continuous, paced load for chaos scenarios: a few workers call until stopped, and every call is counted. The figures
/// go to the test output, and (when <c>MESHKIT_SCENARIO_REPORT</c> names a file) to a JSON line for docs/reliability.md.
/// </summary>
public sealed class ScenarioLoad : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<string> _errors = new();
    private readonly Task[] _workers;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly string _scenario;
    private int _sent;
    private int _failed;
    private long _maxTicks;

    private ScenarioLoad(string scenario, Func<CancellationToken, Task> call, int workers, TimeSpan pause)
    {
        _scenario = scenario;
        _workers = [.. Enumerable.Range(0, workers).Select(_ => Task.Run(() => RunAsync(call, pause)))];
    }

    public int Sent => Volatile.Read(ref _sent);

    public int Failed => Volatile.Read(ref _failed);

    /// <summary>Starts calling <paramref name="call"/> from <paramref name="workers"/> workers, each pausing <paramref name="pause"/> between calls.</summary>
    public static ScenarioLoad Start(string scenario, Func<CancellationToken, Task> call, int workers = 4, TimeSpan? pause = null) =>
        new(scenario, call, workers, pause ?? TimeSpan.FromMilliseconds(2));

    /// <summary>Waits until <paramref name="more"/> more calls were made (so the load really ran through a phase).</summary>
    public Task CallsAsync(int more) =>
        MeshKit.Testing.Eventually.WaitAsync(() => Sent >= more, TimeSpan.FromSeconds(30), $"{more} calls in scenario {_scenario}");

    /// <summary>Keeps the load running for <paramref name="duration"/> (a phase of the scenario, such as an outage).</summary>
    public Task ForAsync(TimeSpan duration)
    {
        var phase = Stopwatch.StartNew();
        return MeshKit.Testing.Eventually.WaitAsync(() => phase.Elapsed >= duration, duration + TimeSpan.FromSeconds(30), $"a {duration.TotalSeconds:0.#} s phase of {_scenario}", TimeSpan.FromMilliseconds(100));
    }

    public async Task<ScenarioResult> StopAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_workers);
        var result = new ScenarioResult(_scenario, Sent, Failed, TimeSpan.FromTicks(Interlocked.Read(ref _maxTicks)).TotalMilliseconds, _clock.Elapsed.TotalSeconds, [.. _errors]);
        Report(result);
        return result;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested)
        {
            await StopAsync();
        }

        _stop.Dispose();
    }

    /// <summary>Soak runs (tests/soak/run.sh) set MESHKIT_SOAK=1; scenarios then run longer with slower rotations.</summary>
    public static bool Soak => Environment.GetEnvironmentVariable("MESHKIT_SOAK") == "1";

    /// <summary>Reports one more figure of a scenario (for example how long ejection took).</summary>
    public static void ReportFigure(string scenario, string figure, double value)
    {
        TestContext.Current.SendDiagnosticMessage($"{scenario}: {figure} = {value:0.#}");
        var file = Environment.GetEnvironmentVariable("MESHKIT_SCENARIO_REPORT");
        if (!string.IsNullOrEmpty(file))
        {
            var line = JsonSerializer.Serialize(new Dictionary<string, object> { ["scenario"] = scenario, [figure] = Math.Round(value, 1), ["at"] = DateTimeOffset.UtcNow });
            lock (typeof(ScenarioLoad))
            {
                File.AppendAllText(file, line + Environment.NewLine);
            }
        }
    }

    private static void Report(ScenarioResult result)
    {
        TestContext.Current.SendDiagnosticMessage(result.ToString());
        var file = Environment.GetEnvironmentVariable("MESHKIT_SCENARIO_REPORT");
        if (!string.IsNullOrEmpty(file))
        {
            var line = JsonSerializer.Serialize(new
            {
                scenario = result.Scenario,
                sent = result.Sent,
                failed = result.Failed,
                max_latency_ms = Math.Round(result.MaxLatencyMs, 1),
                duration_s = Math.Round(result.DurationSeconds, 1),
                soak = Soak,
                at = DateTimeOffset.UtcNow,
            });
            lock (typeof(ScenarioLoad))
            {
                File.AppendAllText(file, line + Environment.NewLine);
            }
        }
    }

    private async Task RunAsync(Func<CancellationToken, Task> call, TimeSpan pause)
    {
        while (!_stop.IsCancellationRequested)
        {
            var started = Stopwatch.GetTimestamp();
            try
            {
                await call(_stop.Token);
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                // The scenario ended while this call was under way: it neither failed nor succeeded.
                return;
            }
            catch (Exception ex)
            {
                Interlocked.Increment(ref _failed);
                if (_errors.Count < 20)
                {
                    _errors.Enqueue(ex.GetBaseException().Message);
                }
            }
            finally
            {
                var elapsed = Stopwatch.GetElapsedTime(started).Ticks;
                long max;
                while (elapsed > (max = Interlocked.Read(ref _maxTicks)) && Interlocked.CompareExchange(ref _maxTicks, elapsed, max) != max)
                {
                }
            }

            Interlocked.Increment(ref _sent);
            try
            {
                await Task.Delay(pause, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
