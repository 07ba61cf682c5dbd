using System.Net;
using MeshKit.Balancing;
using MeshKit.Deadlines;
using MeshKit.Tests.Hosting;
using MeshKit.Transport;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Tests.CallPaths;

/// <summary>
/// The call path of one destination in virtual time (the mesh's clock and random source fixed, the wire replaced):
/// attempt timeout, latency and outlier feedback, the deadline sent on, the weighted split, faults and retries.
/// </summary>
[Trait("Area", "Traffic")]
public sealed class CallPathTests
{
    // A real-time bound on what must happen at once after the virtual clock moved.
    private static readonly TimeSpan Promptly = TimeSpan.FromSeconds(10);
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task An_attempt_that_outlasts_its_attempt_timeout_on_the_mesh_clock_fails_as_a_timeout_that_names_the_setting()
    {
        var sent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var bed = new CallPathBed(
            async (_, _, ct) =>
            {
                sent.TrySetResult();
                await Task.Delay(Timeout.InfiniteTimeSpan, ct);
                return new HttpResponseMessage(HttpStatusCode.OK);
            },
            new Dictionary<string, string?>
            {
                ["Mesh:Policy:Destinations:orders:AttemptTimeout"] = "00:05:00",
                ["Mesh:Policy:Destinations:orders:Timeout"] = "00:10:00",
                ["Mesh:Policy:Destinations:orders:Retry:MaxRetries"] = "0",
            });

        var send = bed.Client.GetAsync("/api", Ct);
        await sent.Task.WaitAsync(Promptly, Ct);
        bed.Time.Advance(TimeSpan.FromMinutes(5) - TimeSpan.FromTicks(1));
        Assert.False(send.IsCompleted);

        bed.Time.Advance(TimeSpan.FromTicks(1));
        var error = await Assert.ThrowsAsync<MeshCallException>(() => send.WaitAsync(Promptly, Ct));
        Assert.Equal("timeout", error.Reason);
        Assert.Contains("Mesh:Policy:Destinations:orders:AttemptTimeout", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_call_after_calls_of_another_host_times_out_on_its_own_hosts_clock()
    {
        // Per-call state is pooled process-wide: calls of another host (on the system's clock) leave their state behind.
        using (var other = new CallPathBed((_, _, _) => CallPathBed.Answer(HttpStatusCode.OK), clock: TimeProvider.System))
        {
            var calls = new Task<HttpResponseMessage>[64];
            for (var i = 0; i < calls.Length; i++)
            {
                calls[i] = other.Client.GetAsync("/api", Ct);
            }

            foreach (var response in await Task.WhenAll(calls).WaitAsync(Promptly, Ct))
            {
                response.Dispose();
            }
        }

        var sent = 0;
        var hung = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var bed = new CallPathBed(
            async (_, _, ct) =>
            {
                if (Interlocked.Increment(ref sent) == 8)
                {
                    hung.TrySetResult();
                }

                await Task.Delay(Timeout.InfiniteTimeSpan, ct);
                return new HttpResponseMessage(HttpStatusCode.OK);
            },
            new Dictionary<string, string?>
            {
                ["Mesh:Policy:Destinations:orders:AttemptTimeout"] = "00:05:00",
                ["Mesh:Policy:Destinations:orders:Timeout"] = "00:10:00",
                ["Mesh:Policy:Destinations:orders:Retry:MaxRetries"] = "0",
            });

        var sends = new Task<HttpResponseMessage>[8];
        for (var i = 0; i < sends.Length; i++)
        {
            sends[i] = bed.Client.GetAsync("/api", Ct);
        }

        await hung.Task.WaitAsync(Promptly, Ct);
        bed.Time.Advance(TimeSpan.FromMinutes(5));
        foreach (var send in sends)
        {
            var error = await Assert.ThrowsAsync<MeshCallException>(() => send.WaitAsync(Promptly, Ct));
            Assert.Equal("timeout", error.Reason);
        }
    }

    [Fact]
    public async Task A_call_waiting_in_the_concurrency_queue_fails_as_a_timeout_when_its_total_timeout_runs_out()
    {
        var sent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource<HttpResponseMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var bed = new CallPathBed(
            (_, _, _) =>
            {
                // Holds the one slot whatever its own timeout says (an answer that ignores cancellation).
                sent.TrySetResult();
                return release.Task;
            },
            new Dictionary<string, string?>
            {
                ["Mesh:Policy:Destinations:orders:Timeout"] = "00:00:05",
                ["Mesh:Policy:Destinations:orders:AttemptTimeout"] = "00:00:05",
                ["Mesh:Policy:Destinations:orders:Retry:MaxRetries"] = "0",
                ["Mesh:Policy:Destinations:orders:Concurrency:MaxRequests"] = "1",
                ["Mesh:Policy:Destinations:orders:Concurrency:MaxQueue"] = "1",
            });

        var holding = bed.Client.GetAsync("/api", Ct);
        await sent.Task.WaitAsync(Promptly, Ct);
        bed.Time.Advance(TimeSpan.FromSeconds(1));
        var queued = bed.Client.GetAsync("/api", Ct);
        bed.Time.Advance(TimeSpan.FromSeconds(5) - TimeSpan.FromTicks(1));
        Assert.False(queued.IsCompleted);

        // A wait in the queue counts in the total timeout.
        bed.Time.Advance(TimeSpan.FromTicks(1));
        var error = await Assert.ThrowsAsync<MeshCallException>(() => queued.WaitAsync(Promptly, Ct));
        Assert.Equal("timeout", error.Reason);
        Assert.Contains("Mesh:Policy:Destinations:orders:Timeout", error.Message, StringComparison.Ordinal);
        Assert.Contains("Mesh:Policy:Destinations:orders:Concurrency", error.Message, StringComparison.Ordinal);
        release.SetResult(new HttpResponseMessage(HttpStatusCode.OK));
        (await holding.WaitAsync(Promptly, Ct)).Dispose();
    }

    [Fact]
    public async Task The_latency_fed_to_the_balancer_is_measured_on_the_mesh_clock()
    {
        var answer = new TaskCompletionSource<HttpResponseMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        var sent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var bed = new CallPathBed((_, _, _) => { sent.TrySetResult(); return answer.Task; }, endpoints: [("10.0.0.1:8443", "v1")]);

        var send = bed.Client.GetAsync("/api", Ct);
        await sent.Task.WaitAsync(Promptly, Ct);
        bed.Time.Advance(TimeSpan.FromMilliseconds(250));
        answer.SetResult(new HttpResponseMessage(HttpStatusCode.OK));
        using var response = await send.WaitAsync(Promptly, Ct);

        var states = bed.Services.GetRequiredService<EndpointStateRegistry>();
        Assert.Equal(250, states.Get("orders", "10.0.0.1:8443").LatencyMs, 6);
    }

    [Fact]
    public async Task A_failed_attempt_ejects_the_endpoint_for_the_base_ejection_time_of_the_mesh_clock()
    {
        string? failedOn = null;
        using var bed = new CallPathBed(
            (endpoint, _, _) =>
            {
                failedOn = endpoint;
                return CallPathBed.Answer(HttpStatusCode.ServiceUnavailable);
            },
            new Dictionary<string, string?>
            {
                ["Mesh:Policy:Destinations:orders:Retry:MaxRetries"] = "0",
                ["Mesh:Policy:Destinations:orders:OutlierDetection:ConsecutiveFailures"] = "1",
                ["Mesh:Policy:Destinations:orders:OutlierDetection:BaseEjectionTime"] = "00:00:30",
            });

        using var response = await bed.Client.GetAsync("/api", Ct).WaitAsync(Promptly, Ct);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        var states = bed.Services.GetRequiredService<EndpointStateRegistry>();
        Assert.Equal(states.Now + (30 * bed.Time.TimestampFrequency), states.Get("orders", failedOn!).EjectedUntil);
        Assert.Equal([("orders", failedOn!)], states.EjectedNow());
        bed.Time.Advance(TimeSpan.FromSeconds(30));
        Assert.Empty(states.EjectedNow());
    }

    [Fact]
    public async Task The_deadline_sent_on_is_the_time_left_of_the_callers_deadline_on_the_mesh_clock()
    {
        string? sent = null;
        using var bed = new CallPathBed((_, request, _) =>
        {
            sent = request.Headers.GetValues(MeshDeadline.HeaderName).Single();
            return CallPathBed.Answer(HttpStatusCode.OK);
        });

        MeshDeadline.SetFromHeader("1500", bed.Time);
        bed.Time.Advance(TimeSpan.FromMilliseconds(400));
        using var response = await bed.Client.GetAsync("/api", Ct).WaitAsync(Promptly, Ct);

        Assert.Equal("1100", sent);
    }

    [Theory]
    [InlineData(0.0, "v1")]
    [InlineData(0.899, "v1")]
    [InlineData(0.9, "v2")]
    [InlineData(0.999, "v2")]
    public async Task The_split_draw_comes_from_the_mesh_random_source(double draw, string version)
    {
        string? servedBy = null;
        using var bed = Canary((endpoint, _, _) => { servedBy = endpoint; return CallPathBed.Answer(HttpStatusCode.OK); }, new ScriptedRandom(draw));

        using var response = await bed.Client.GetAsync("/api", Ct).WaitAsync(Promptly, Ct);

        Assert.Equal(version == "v1" ? "10.0.0.1:8443" : "10.0.0.2:8443", servedBy);
    }

    [Fact]
    public async Task With_a_fixed_seed_the_weighted_split_sends_the_same_requests_to_the_canary_every_run()
    {
        async Task<List<string>> RunAsync()
        {
            var served = new List<string>();
            using var bed = Canary((endpoint, _, _) => { served.Add(endpoint); return CallPathBed.Answer(HttpStatusCode.OK); }, new Random(90));
            for (var i = 0; i < 1000; i++)
            {
                using var response = await bed.Client.GetAsync("/api", Ct);
            }

            return served;
        }

        var first = await RunAsync();
        var again = await RunAsync();

        Assert.Equal(first, again);
        Assert.InRange(first.Count(e => e == "10.0.0.2:8443"), 70, 130);
    }

    [Fact]
    public async Task A_fault_delay_holds_the_request_for_its_duration_on_the_mesh_clock()
    {
        using var bed = Canary((_, _, _) => CallPathBed.Answer(HttpStatusCode.OK), new ScriptedRandom(0.999));

        var send = bed.Client.GetAsync("/chaos", Ct);
        bed.Time.Advance(TimeSpan.FromMinutes(1) - TimeSpan.FromTicks(1));
        Assert.False(send.IsCompleted);

        bed.Time.Advance(TimeSpan.FromTicks(1));
        using var response = await send.WaitAsync(Promptly, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Theory]
    [InlineData(0.2499, HttpStatusCode.ServiceUnavailable)]
    [InlineData(0.25, HttpStatusCode.OK)]
    public async Task An_abort_fault_answers_the_share_its_percent_names_and_is_never_retried(double draw, HttpStatusCode status)
    {
        var attempts = 0;
        using var bed = Canary((_, _, _) => { Interlocked.Increment(ref attempts); return CallPathBed.Answer(HttpStatusCode.OK); }, new ScriptedRandom(draw));

        using var response = await bed.Client.GetAsync("/flaky", Ct).WaitAsync(Promptly, Ct);

        Assert.Equal(status, response.StatusCode);
        Assert.Equal(status != HttpStatusCode.OK, response.Headers.Contains("x-mesh-fault"));
        Assert.Equal(status == HttpStatusCode.OK ? 1 : 0, attempts);
    }

    [Fact]
    public async Task A_503_is_retried_after_its_back_off_on_the_mesh_clock_on_the_other_endpoint()
    {
        var served = new List<string>();
        using var bed = new CallPathBed(
            (endpoint, _, _) =>
            {
                lock (served)
                {
                    served.Add(endpoint);
                    return CallPathBed.Answer(served.Count == 1 ? HttpStatusCode.ServiceUnavailable : HttpStatusCode.OK);
                }
            },
            new Dictionary<string, string?>
            {
                ["Mesh:Policy:Destinations:orders:Retry:MaxRetries"] = "2",
                ["Mesh:Policy:Destinations:orders:Retry:BaseDelay"] = "00:00:10",
                ["Mesh:Policy:Destinations:orders:Retry:MaxDelay"] = "00:00:10",
            });

        var start = bed.Time.GetUtcNow();
        var send = bed.Client.GetAsync("/api", Ct);
        await WaitUntilAsync(() => served.Count == 1);
        Assert.False(send.IsCompleted);

        // Polly's jittered exponential back-off waits at most the configured delay, on the mesh clock: move that clock a
        // second at a time until the retry goes out. The back-off's timer starts a moment after the first answer, on a
        // busy machine after several steps, so the bound is real time, not a count of steps.
        var stopwatch = System.Diagnostics.Stopwatch.StartNew();
        while (served.Count < 2)
        {
            Assert.True(stopwatch.Elapsed < Promptly, $"no retry after {bed.Time.GetUtcNow() - start} of back-off on the mesh clock");
            bed.Time.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(10, Ct);
        }

        using var response = await send.WaitAsync(Promptly, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2, served.Count);
        Assert.NotEqual(served[0], served[1]);
    }

    [Fact]
    public async Task The_call_ends_at_its_total_timeout_even_while_waiting_to_retry()
    {
        using var bed = new CallPathBed(
            (_, _, _) => CallPathBed.Answer(HttpStatusCode.ServiceUnavailable),
            new Dictionary<string, string?>
            {
                ["Mesh:Policy:Destinations:orders:Timeout"] = "00:00:05",
                ["Mesh:Policy:Destinations:orders:Retry:MaxRetries"] = "3",
                ["Mesh:Policy:Destinations:orders:Retry:BaseDelay"] = "00:01:00",
                ["Mesh:Policy:Destinations:orders:Retry:MaxDelay"] = "00:01:00",
            });

        var send = bed.Client.GetAsync("/api", Ct);
        await WaitUntilAsync(() => bed.Services.GetRequiredService<EndpointStateRegistry>().Count > 0);
        bed.Time.Advance(TimeSpan.FromSeconds(5));
        var error = await Assert.ThrowsAsync<MeshCallException>(() => send.WaitAsync(Promptly, Ct));
        Assert.Equal("timeout", error.Reason);
        Assert.Contains("Mesh:Policy:Destinations:orders:Timeout", error.Message, StringComparison.Ordinal);
    }

    private static CallPathBed Canary(Func<string, HttpRequestMessage, CancellationToken, Task<HttpResponseMessage>> answer, Random random) =>
        new(
            answer,
            new Dictionary<string, string?>
            {
                ["Mesh:Policy:Destinations:orders:Retry:MaxRetries"] = "0",
                ["Mesh:Policy:Destinations:orders:Routes:0:Name"] = "chaos",
                ["Mesh:Policy:Destinations:orders:Routes:0:Match:Path:Prefix"] = "/chaos",
                ["Mesh:Policy:Destinations:orders:Routes:0:Fault:Delay:Percent"] = "100",
                ["Mesh:Policy:Destinations:orders:Routes:0:Fault:Delay:Duration"] = "00:01:00",
                ["Mesh:Policy:Destinations:orders:Routes:1:Name"] = "flaky",
                ["Mesh:Policy:Destinations:orders:Routes:1:Match:Path:Prefix"] = "/flaky",
                ["Mesh:Policy:Destinations:orders:Routes:1:Fault:Abort:Percent"] = "25",
                ["Mesh:Policy:Destinations:orders:Routes:1:Fault:Abort:Status"] = "503",
                ["Mesh:Policy:Destinations:orders:Routes:2:Name"] = "canary",
                ["Mesh:Policy:Destinations:orders:Routes:2:Match:Path:Prefix"] = "/",
                ["Mesh:Policy:Destinations:orders:Routes:2:Split:v1"] = "90",
                ["Mesh:Policy:Destinations:orders:Routes:2:Split:v2"] = "10",
            },
            [("10.0.0.1:8443", "v1"), ("10.0.0.2:8443", "v2")],
            random);

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Promptly;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the condition did not hold in time");
            await Task.Delay(5, Ct);
        }
    }
}
