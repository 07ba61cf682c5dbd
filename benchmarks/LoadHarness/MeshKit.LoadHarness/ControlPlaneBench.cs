using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using MeshKit.Identity;

namespace MeshKit.LoadHarness;

/// <summary>The control service's figures, measured against a control service process of its own.</summary>
internal sealed record ControlPlaneFigures(
    double CsrSignaturesPerSecond,
    long CsrSigned,
    long CsrFailed,
    double CsrSeconds,
    int CsrConcurrency,
    int Watchers,
    int PushRounds,
    double PushP50Ms,
    double PushP99Ms,
    double PushMaxMs,
    IReadOnlyList<double> PushP99MsPerRound,
    IReadOnlyList<double> ChangeRequestMsPerRound,
    IReadOnlyList<double> RearmMsPerRound,
    bool NewConnectionPerPoll);

/// <summary>
/// CSR signing throughput (POST /v1/identity/sign with a join token) and push latency on the control channel to many
/// waiting watchers (GET /v1/workloads/self/watch). The change pushed is a central policy write for the watchers' service
/// (PUT /v1/policy/bench-watcher), and every answer is checked to carry the new policy version. Like MeshKit's own
/// ControlPlaneClient, each watcher keeps its mTLS connection between polls; --watch-reconnect opens one per poll.
/// </summary>
internal static class ControlPlaneBench
{
    private const string WatcherService = "bench-watcher";

    public static async Task<ControlPlaneFigures> RunAsync(HarnessOptions o, CancellationToken cancellationToken)
    {
        var control = await ControlService.StartAsync(
            "control-plane-bench",
            o,
            services: [WatcherService],
            cancellationToken,
            "--ControlPlane:MaxWatchWait=00:05:00");
        try
        {
            var (signed, failed, seconds) = await SignAsync(o, control, cancellationToken);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"CSR signing: {signed / seconds:F0} signatures/s ({signed} in {seconds:F1} s at concurrency {o.CsrConcurrency}, {failed} failed)"));
            var push = await PushAsync(o, control, cancellationToken);
            return new ControlPlaneFigures(signed / seconds, signed, failed, seconds, o.CsrConcurrency, o.Watchers, o.PushRounds, push.P50, push.P99, push.Max, push.PerRoundP99, push.ChangeMs, push.RearmMs, o.WatchReconnect);
        }
        finally
        {
            control.Process.Dispose();
        }
    }

    private static HttpClient CreateClient(ControlService control, X509Certificate2? clientCertificate = null)
    {
        // The harness's own client: loopback only, trusting the control service's certificate is not what is measured.
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            MaxConnectionsPerServer = int.MaxValue,
            SslOptions =
            {
                RemoteCertificateValidationCallback = static (_, _, _, _) => true,
                LocalCertificateSelectionCallback = clientCertificate is null ? null : (_, _, _, _, _) => clientCertificate,
                ClientCertificates = clientCertificate is null ? null : [clientCertificate],
            },
        };
        return new HttpClient(handler) { BaseAddress = control.Address, Timeout = TimeSpan.FromSeconds(120) };
    }

    private static async Task<(long Signed, long Failed, double Seconds)> SignAsync(HarnessOptions o, ControlService control, CancellationToken cancellationToken)
    {
        // CSRs are made beforehand: the client's key generation is not the control service's cost.
        var id = SpiffeId.Create("mesh.local", SpiffeId.DefaultNamespace, WatcherService);
        var bodies = new List<byte[]>();
        for (var i = 0; i < 64; i++)
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            bodies.Add(JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string> { ["csr"] = CertificateSigningRequests.Create(key, id), ["instance"] = $"csr-load-{i}" }));
        }

        using var http = CreateClient(control);
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", control.JoinToken);

        async Task<(long, long)> LoadAsync(TimeSpan duration)
        {
            long ok = 0, bad = 0;
            var stopAt = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
            var workers = Enumerable.Range(0, o.CsrConcurrency).Select(async w =>
            {
                var n = w;
                while (Stopwatch.GetTimestamp() < stopAt)
                {
                    using var content = new ByteArrayContent(bodies[n++ % bodies.Count]);
                    content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                    using var response = await http.PostAsync("v1/identity/sign", content, cancellationToken);
                    await response.Content.LoadIntoBufferAsync(cancellationToken);
                    if (response.IsSuccessStatusCode)
                    {
                        Interlocked.Increment(ref ok);
                    }
                    else
                    {
                        Interlocked.Increment(ref bad);
                    }
                }
            });
            await Task.WhenAll(workers);
            return (ok, bad);
        }

        await LoadAsync(TimeSpan.FromSeconds(Math.Max(1, o.WarmupSeconds)));
        var started = Stopwatch.GetTimestamp();
        var (signed, failed) = await LoadAsync(TimeSpan.FromSeconds(o.DurationSeconds));
        return (signed, failed, Stopwatch.GetElapsedTime(started).TotalSeconds);
    }

    private static async Task<(double P50, double P99, double Max, List<double> PerRoundP99, List<double> ChangeMs, List<double> RearmMs)> PushAsync(HarnessOptions o, ControlService control, CancellationToken cancellationToken)
    {
        // One certificate for every simulated watcher (a connection each, as real workloads have); the control service
        // tells them apart by X-Mesh-Instance.
        var certificate = await IssueAsync(control, cancellationToken);
        using var watchers = CreateClient(control, certificate);
        using var admin = CreateClient(control);
        admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", control.AdminToken);

        var indexes = new long[o.Watchers];
        var reconnect = o.WatchReconnect;
        var firstPolls = Enumerable.Range(0, o.Watchers).Select(async i => indexes[i] = (await WatchAsync(watchers, i, 0, "connect", reconnect, cancellationToken)).Index);
        await Task.WhenAll(firstPolls);
        Console.WriteLine($"Control channel: {o.Watchers} watchers connected.");

        var all = new List<double>();
        var perRound = new List<double>();
        var changeMs = new List<double>();
        var rearmMs = new List<double>();
        long? previousChange = null;
        for (var round = 1; round <= o.PushRounds; round++)
        {
            var marker = $"round-{round}";
            var polls = Enumerable.Range(0, o.Watchers).Select(i => WatchAsync(watchers, i, indexes[i], marker, reconnect, cancellationToken)).ToArray();

            // Every watch is waiting once the control service has recorded this round's report of every watcher.
            await Readiness.PollAsync($"{o.Watchers} parked watches", control.Process, async () => await CountReportsAsync(admin, marker, cancellationToken) >= o.Watchers, cancellationToken);
            if (previousChange is { } p)
            {
                // From the previous change until every watcher was waiting again (coarse: the check polls every 100 ms).
                rearmMs.Add(Stopwatch.GetElapsedTime(p).TotalMilliseconds);
            }

            var changed = Stopwatch.GetTimestamp();
            previousChange = changed;
            string pushedVersion;
            using (var document = new StringContent(PolicyDocument(round), System.Text.Encoding.UTF8, "application/json"))
            using (var change = await admin.PutAsync($"v1/policy/{WatcherService}", document, cancellationToken))
            {
                change.EnsureSuccessStatusCode();
                changeMs.Add(Stopwatch.GetElapsedTime(changed).TotalMilliseconds);
                using var answer = JsonDocument.Parse(await change.Content.ReadAsStringAsync(cancellationToken));
                pushedVersion = answer.RootElement.GetProperty("version").GetString()!;
            }

            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(TimeSpan.FromSeconds(60));
            var answers = await Task.WhenAll(polls).WaitAsync(deadline.Token);
            var latencies = answers.Select(a => Stopwatch.GetElapsedTime(changed, a.ReceivedAt).TotalMilliseconds).Order().ToList();
            for (var i = 0; i < answers.Length; i++)
            {
                indexes[i] = answers[i].Index;
                if (answers[i].PolicyVersion != pushedVersion)
                {
                    throw new InvalidOperationException($"Watcher {i} woke with policy version '{answers[i].PolicyVersion}', not the pushed '{pushedVersion}'.");
                }
            }

            all.AddRange(latencies);
            perRound.Add(Percentile(latencies, 99));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Control channel round {round}: change answered in {changeMs[^1]:F1} ms; {o.Watchers} watchers woke, p50 {Percentile(latencies, 50):F1} ms, p99 {perRound[^1]:F1} ms, max {latencies[^1]:F1} ms"));
        }

        all.Sort();
        return (Percentile(all, 50), Percentile(all, 99), all.Count == 0 ? 0 : all[^1], perRound, changeMs, rearmMs);
    }

    // A real policy document, different every round (a timeout of round + 1 seconds).
    private static string PolicyDocument(int round) =>
        string.Create(CultureInfo.InvariantCulture, $$"""{ "Policy": { "Destinations": { "upstream": { "Timeout": "00:00:{{round % 50 + 1:D2}}" } } } }""");

    private static async Task<(long Index, long ReceivedAt, string? PolicyVersion)> WatchAsync(HttpClient http, int watcher, long index, string marker, bool reconnect, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, string.Create(CultureInfo.InvariantCulture, $"v1/workloads/self/watch?index={index}&wait=120s"));
        request.Headers.Add("X-Mesh-Instance", string.Create(CultureInfo.InvariantCulture, $"watcher-{watcher:D4}"));

        // The policy-version report is used as a round marker, so the harness can see when every watch is waiting.
        request.Headers.Add("X-Mesh-Policy-Version", marker);

        // --watch-reconnect: a new mTLS handshake for every poll (MeshKit's client before it kept its connection).
        request.Headers.ConnectionClose = reconnect;
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
        var receivedAt = Stopwatch.GetTimestamp();
        response.EnsureSuccessStatusCode();
        using var body = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(cancellationToken), cancellationToken: cancellationToken);
        var policyVersion = body.RootElement.TryGetProperty("policyVersion", out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        return (body.RootElement.GetProperty("index").GetInt64(), receivedAt, policyVersion);
    }

    private static async Task<int> CountReportsAsync(HttpClient admin, string marker, CancellationToken cancellationToken)
    {
        using var doc = JsonDocument.Parse(await admin.GetStringAsync("v1/workloads", cancellationToken));
        var count = 0;
        foreach (var w in doc.RootElement.GetProperty("workloads").EnumerateArray())
        {
            if (w.TryGetProperty("policyVersion", out var p) && p.ValueKind == JsonValueKind.String && p.GetString() == marker)
            {
                count++;
            }
        }

        return count;
    }

    private static async Task<X509Certificate2> IssueAsync(ControlService control, CancellationToken cancellationToken)
    {
        using var http = CreateClient(control);
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", control.JoinToken);
        // Not disposed: the certificate returned keeps using this key.
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var csr = CertificateSigningRequests.Create(key, SpiffeId.Create("mesh.local", SpiffeId.DefaultNamespace, WatcherService));
        using var response = await http.PostAsJsonAsync("v1/identity/sign", new Dictionary<string, string> { ["csr"] = csr }, cancellationToken);
        response.EnsureSuccessStatusCode();
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
        var chain = doc.RootElement.GetProperty("certificateChain").GetString()!;
        using var leaf = X509Certificate2.CreateFromPem(chain);
        return leaf.CopyWithPrivateKey(key);
    }

    private static double Percentile(List<double> sorted, double p)
    {
        if (sorted.Count == 0)
        {
            return 0;
        }

        // Nearest rank.
        var rank = (int)Math.Ceiling(p / 100.0 * sorted.Count);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Count - 1)];
    }
}
