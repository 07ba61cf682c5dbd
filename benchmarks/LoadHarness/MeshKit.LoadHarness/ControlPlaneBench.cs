using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using MeshKit.Identity;
using MeshKit.Testing.Consul;

namespace MeshKit.LoadHarness;

/// <summary>The push to one number of waiting watchers, with the memory they cost the control service.</summary>
internal sealed record PushFigures(
    int Watchers,
    int Rounds,
    double P50Ms,
    double P99Ms,
    double MaxMs,
    IReadOnlyList<double> P99MsPerRound,
    IReadOnlyList<double> ChangeRequestMsPerRound,
    IReadOnlyList<double> RearmMsPerRound,
    double ConnectSeconds,
    double RssMb,
    double MbPer1000Watchers,
    double ServiceCpuUsPerWatcher = 0,
    double HarnessCpuUsPerWatcher = 0);

/// <summary>The figures of one replica, or of several against one Consul double, with the load spread over them.</summary>
internal sealed record ReplicaSetFigures(
    int Replicas,
    double CsrSignaturesPerSecond,
    long CsrSigned,
    long CsrFailed,
    double CsrSeconds,
    double ServiceCpuUsPerSignature,
    double HarnessCpuUsPerSignature,
    double RssMbWithoutWatchers,
    IReadOnlyList<PushFigures> Pushes,
    string LoadAverageAtStart,
    string LoadAverageAtEnd);

/// <summary>The control service's figures, measured against control service processes of their own.</summary>
/// <remarks>The first fields are the one-replica figures at the first watcher count, as earlier runs recorded them.</remarks>
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
    bool NewConnectionPerPoll,
    IReadOnlyList<ReplicaSetFigures>? ReplicaSets = null);

/// <summary>
/// CSR signing throughput (POST /v1/identity/sign with a join token) and push latency on the control channel to many
/// waiting watchers (GET /v1/workloads/self/watch), for one control service and for several replicas sharing a Consul double
/// (in this process) with the load spread over them. The change pushed is a central policy write for the watchers' service
/// (PUT /v1/policy/bench-watcher, on the first replica), and every answer is checked to carry the new policy version. Like
/// MeshKit's own ControlPlaneClient, each watcher keeps its mTLS connection between polls; --watch-reconnect opens one per poll.
/// </summary>
internal static class ControlPlaneBench
{
    private const string WatcherService = "bench-watcher";
    private const string TrustDomain = "mesh.local";

    /// <summary>How many watchers connect at once (the first poll of each is its TLS handshake and a chain validation).</summary>
    private const int ConnectConcurrency = 128;

    public static async Task<ControlPlaneFigures> RunAsync(HarnessOptions o, CancellationToken cancellationToken)
    {
        var sets = new List<ReplicaSetFigures>();
        foreach (var replicas in o.Replicas)
        {
            sets.Add(await RunSetAsync(o, replicas, cancellationToken));
        }

        var first = sets[0];
        var push = first.Pushes[0];
        return new ControlPlaneFigures(
            first.CsrSignaturesPerSecond, first.CsrSigned, first.CsrFailed, first.CsrSeconds, o.CsrConcurrency, push.Watchers, push.Rounds,
            push.P50Ms, push.P99Ms, push.MaxMs, push.P99MsPerRound, push.ChangeRequestMsPerRound, push.RearmMsPerRound, o.WatchReconnect, sets);
    }

    private static async Task<ReplicaSetFigures> RunSetAsync(HarnessOptions o, int replicas, CancellationToken cancellationToken)
    {
        var loadAtStart = LoadAverage();
        Console.WriteLine($"Control service, {replicas} replica(s); load average {loadAtStart}.");
        ConsulDouble? consul = null;
        var services = new List<ControlService>();
        try
        {
            if (replicas == 1)
            {
                // One control service as users start it: its own generated root, no Consul.
                services.Add(await ControlService.StartAsync("control-plane-bench", o, [WatcherService], cancellationToken, "--ControlPlane:MaxWatchWait=00:05:00"));
            }
            else
            {
                consul = await ConsulDouble.StartAsync();
                foreach (var ca in ReplicaCertificates(Path.Combine(o.Work, $"replica-ca-{replicas}"), replicas))
                {
                    services.Add(await ControlService.StartAsync(
                        $"control-plane-replica-{services.Count + 1}-of-{replicas}",
                        o,
                        [WatcherService],
                        cancellationToken,
                        "--ControlPlane:MaxWatchWait=00:05:00",
                        $"--ControlPlane:Consul:Address={consul.Address}",
                        $"--ControlPlane:Ca:CertificatePath={ca.Certificate}",
                        $"--ControlPlane:Ca:KeyPath={ca.Key}",
                        $"--ControlPlane:Ca:TrustBundlePath={ca.Root}"));
                }
            }

            var sign = await SignAsync(o, services, cancellationToken);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"CSR signing, {replicas} replica(s): {sign.Signed / sign.Seconds:F0} signatures/s ({sign.Signed} in {sign.Seconds:F1} s at concurrency {o.CsrConcurrency}, {sign.Failed} failed; CPU per signature: {sign.ServiceCpuUs:F0} µs in the control service, {sign.HarnessCpuUs:F0} µs in the load generator)"));
            var pushes = await PushAsync(o, services, cancellationToken);
            return new ReplicaSetFigures(replicas, sign.Signed / sign.Seconds, sign.Signed, sign.Failed, sign.Seconds, sign.ServiceCpuUs, sign.HarnessCpuUs, pushes.RssWithoutWatchers, pushes.Figures, loadAtStart, LoadAverage());
        }
        finally
        {
            foreach (var service in services)
            {
                service.Process.Dispose();
            }

            if (consul is not null)
            {
                await consul.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// One root and an intermediate per replica signed by it (CertificateAuthorityRoots.CreateIntermediate, as the operator
    /// makes them): each replica is given its intermediate as a user-supplied CA, the root as its trust bundle.
    /// </summary>
    private static List<(string Certificate, string Key, string Root)> ReplicaCertificates(string folder, int replicas)
    {
        Directory.CreateDirectory(folder);
        var now = DateTimeOffset.UtcNow;
        using var rootKey = CertificateAuthorityRoots.CreateKey();
        using var root = CertificateAuthorityRoots.CreateRoot(rootKey, TrustDomain, new X500DistinguishedName("O=MeshKit, CN=MeshKit bench root"), now, TimeSpan.FromDays(30));
        var rootPath = Path.Combine(folder, "root.crt.pem");
        File.WriteAllText(rootPath, root.ExportCertificatePem());
        var list = new List<(string, string, string)>();
        for (var i = 1; i <= replicas; i++)
        {
            using var key = CertificateAuthorityRoots.CreateKey();
            using var intermediate = CertificateAuthorityRoots.CreateIntermediate(root, rootKey, key, TrustDomain, new X500DistinguishedName($"O=MeshKit, CN=MeshKit bench replica {i}"), now, TimeSpan.FromDays(7));
            var certificate = Path.Combine(folder, $"replica-{i}.crt.pem");
            var keyPath = Path.Combine(folder, $"replica-{i}.key.pem");
            File.WriteAllText(certificate, intermediate.ExportCertificatePem());
            File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(keyPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
            list.Add((certificate, keyPath, rootPath));
        }

        return list;
    }

    private static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "?";
        }
    }

    private static HttpClient CreateClient(ControlService control, X509Certificate2? clientCertificate = null)
    {
        // The harness's own client: loopback only, trusting the control service's certificate is not what is measured.
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(10),
            MaxConnectionsPerServer = int.MaxValue,
            ConnectTimeout = TimeSpan.FromSeconds(30),
            SslOptions =
            {
                RemoteCertificateValidationCallback = static (_, _, _, _) => true,
                LocalCertificateSelectionCallback = clientCertificate is null ? null : (_, _, _, _, _) => clientCertificate,
                ClientCertificates = clientCertificate is null ? null : [clientCertificate],
            },
        };
        return new HttpClient(handler) { BaseAddress = control.Address, Timeout = TimeSpan.FromSeconds(120) };
    }

    private static async Task<(long Signed, long Failed, double Seconds, double ServiceCpuUs, double HarnessCpuUs)> SignAsync(HarnessOptions o, List<ControlService> services, CancellationToken cancellationToken)
    {
        // CSRs are made beforehand: the client's key generation is not the control service's cost.
        var id = SpiffeId.Create(TrustDomain, SpiffeId.DefaultNamespace, WatcherService);
        var bodies = new List<byte[]>();
        for (var i = 0; i < 64; i++)
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            bodies.Add(JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string> { ["csr"] = CertificateSigningRequests.Create(key, id), ["instance"] = $"csr-load-{i}" }));
        }

        // The load is spread over the replicas: worker w posts to replica w mod N, on its own kept-alive connection.
        var clients = services.Select(s =>
        {
            var http = CreateClient(s);
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", s.JoinToken);
            return http;
        }).ToList();
        try
        {
            async Task<(long, long)> LoadAsync(TimeSpan duration)
            {
                long ok = 0, bad = 0;
                var stopAt = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
                var workers = Enumerable.Range(0, o.CsrConcurrency).Select(async w =>
                {
                    var n = w;
                    var http = clients[w % clients.Count];
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
            var serviceCpu = services.Sum(s => s.Process.CpuMilliseconds());
            var harnessCpu = Process.GetCurrentProcess().TotalProcessorTime.TotalMilliseconds;
            var started = Stopwatch.GetTimestamp();
            var (signed, failed) = await LoadAsync(TimeSpan.FromSeconds(o.DurationSeconds));
            var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            var perSignature = Math.Max(1, signed);
            return (signed, failed, seconds,
                (services.Sum(s => s.Process.CpuMilliseconds()) - serviceCpu) * 1000 / perSignature,
                (Process.GetCurrentProcess().TotalProcessorTime.TotalMilliseconds - harnessCpu) * 1000 / perSignature);
        }
        finally
        {
            foreach (var http in clients)
            {
                http.Dispose();
            }
        }
    }

    private static async Task<(double RssWithoutWatchers, List<PushFigures> Figures)> PushAsync(HarnessOptions o, List<ControlService> services, CancellationToken cancellationToken)
    {
        // One certificate per replica, issued by it, for every simulated watcher of that replica (a connection each, as real
        // workloads have); the control service tells them apart by X-Mesh-Instance. Watcher i talks to replica i mod N.
        // Each watcher has a client (and so a connection) of its own, as each workload has: with one shared pool, a round's
        // 10,000 polls at once would open thousands of new connections at the same moment instead of reusing the idle ones.
        var certificates = new List<X509Certificate2>();
        var watchers = new List<HttpClient>();
        using var admin = CreateClient(services[0]);
        admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", services[0].AdminToken);
        var admins = services.Select(s =>
        {
            var http = CreateClient(s);
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", s.AdminToken);
            return http;
        }).ToList();
        try
        {
            foreach (var service in services)
            {
                certificates.Add(await IssueAsync(service, cancellationToken));
            }

            // The memory the watchers cost is measured from here (after the sign load, the certificates issued).
            var rssWithout = services.Sum(s => s.Process.RssMegabytes());
            var figures = new List<PushFigures>();
            var indexes = new List<long>();
            var reconnect = o.WatchReconnect;
            foreach (var count in o.WatcherCounts)
            {
                // Connect the watchers this count adds: their first poll (index 0) answers at once.
                var connectStarted = Stopwatch.GetTimestamp();
                var from = indexes.Count;
                indexes.AddRange(new long[count - from]);
                for (var i = from; i < count; i++)
                {
                    watchers.Add(CreateClient(services[i % services.Count], certificates[i % services.Count]));
                }

                using (var connectDeadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
                using (var gate = new SemaphoreSlim(ConnectConcurrency))
                {
                    connectDeadline.CancelAfter(TimeSpan.FromMinutes(5));
                    await Task.WhenAll(Enumerable.Range(from, count - from).Select(async i =>
                    {
                        await gate.WaitAsync(connectDeadline.Token);
                        try
                        {
                            indexes[i] = (await WatchAsync(watchers[i], i, services.Count, 0, "connect", reconnect, connectDeadline.Token)).Index;
                        }
                        finally
                        {
                            gate.Release();
                        }
                    }));
                }

                var connectSeconds = Stopwatch.GetElapsedTime(connectStarted).TotalSeconds;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Control channel: {count} watchers connected ({count - from} new in {connectSeconds:F1} s) over {services.Count} replica(s)."));
                figures.Add(await RoundsAsync(o, services, watchers, admin, admins, indexes, rssWithout, connectSeconds, cancellationToken));
            }

            return (rssWithout, figures);
        }
        finally
        {
            foreach (var http in watchers.Concat(admins))
            {
                http.Dispose();
            }
        }
    }

    private static async Task<PushFigures> RoundsAsync(
        HarnessOptions o,
        List<ControlService> services,
        List<HttpClient> watchers,
        HttpClient admin,
        List<HttpClient> admins,
        List<long> indexes,
        double rssWithout,
        double connectSeconds,
        CancellationToken cancellationToken)
    {
        var count = indexes.Count;
        var replicas = services.Count;
        var all = new List<double>();
        var perRound = new List<double>();
        var changeMs = new List<double>();
        var rearmMs = new List<double>();
        var rss = 0.0;
        double serviceCpuUs = 0, harnessCpuUs = 0;
        long? previousChange = null;
        for (var round = 1; round <= o.PushRounds; round++)
        {
            var marker = $"round-{round}-{count}";
            var polls = Enumerable.Range(0, count).Select(i => WatchAsync(watchers[i], i, replicas, indexes[i], marker, o.WatchReconnect, cancellationToken)).ToArray();

            // Every watch is waiting once each replica has recorded this round's report of each of its watchers.
            for (var r = 0; r < replicas; r++)
            {
                var replica = r;
                var expected = (count / replicas) + (replica < count % replicas ? 1 : 0);
                var seen = 0;
                try
                {
                    await Readiness.PollAsync($"{expected} parked watches on replica {replica + 1}", services[replica].Process, async () => (seen = await CountReportsAsync(admins[replica], Instance(replica, null), marker, cancellationToken)) >= expected, cancellationToken);
                }
                catch (TimeoutException ex)
                {
                    throw new TimeoutException($"{ex.Message} It had recorded {seen} of this round's polls ({polls.Count(p => p.IsCompleted)} polls had already answered, {polls.Count(p => p.IsFaulted)} with an error; the first: {polls.FirstOrDefault(p => p.IsFaulted)?.Exception?.InnerException?.InnerException}; the first answer: {polls.FirstOrDefault(p => p.IsCompletedSuccessfully)?.Result}).", ex);
                }
            }

            if (previousChange is { } p)
            {
                // From the previous change until every watcher was waiting again (coarse: the check polls every 100 ms).
                rearmMs.Add(Stopwatch.GetElapsedTime(p).TotalMilliseconds);
            }
            else
            {
                // The watchers' memory: every one of them parked in a waiting poll, before the first change.
                rss = services.Sum(s => s.Process.RssMegabytes());
            }

            var serviceCpu = services.Sum(s => s.Process.CpuMilliseconds());
            var harnessCpu = Process.GetCurrentProcess().TotalProcessorTime.TotalMilliseconds;
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
            var answers = await WhenAllWithPolicyAsync(polls, pushedVersion, deadline.Token);

            // CPU from the change until every watcher has its answer, per watcher (machine load does not inflate it much).
            serviceCpuUs += (services.Sum(s => s.Process.CpuMilliseconds()) - serviceCpu) * 1000 / count;
            harnessCpuUs += (Process.GetCurrentProcess().TotalProcessorTime.TotalMilliseconds - harnessCpu) * 1000 / count;
            var latencies = answers.Select(a => Stopwatch.GetElapsedTime(changed, a.ReceivedAt).TotalMilliseconds).Order().ToList();
            for (var i = 0; i < answers.Length; i++)
            {
                indexes[i] = answers[i].Index;
            }

            all.AddRange(latencies);
            perRound.Add(Percentile(latencies, 99));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Control channel round {round}: change answered in {changeMs[^1]:F1} ms; {count} watchers woke, p50 {Percentile(latencies, 50):F1} ms, p99 {perRound[^1]:F1} ms, max {latencies[^1]:F1} ms"));
        }

        all.Sort();
        var perThousand = (rss - rssWithout) / (count / 1000.0);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Control channel, {count} watchers over {replicas} replica(s): p99 {Percentile(all, 99):F1} ms; RSS {rss:F0} MB with them waiting, {rssWithout:F0} MB without: {perThousand:F1} MB per 1,000 watchers"));
        serviceCpuUs /= o.PushRounds;
        harnessCpuUs /= o.PushRounds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Control channel, {count} watchers: CPU per watcher woken {serviceCpuUs:F0} µs in the control service(s), {harnessCpuUs:F0} µs in the load generator"));
        return new PushFigures(count, o.PushRounds, Percentile(all, 50), Percentile(all, 99), all.Count == 0 ? 0 : all[^1], perRound, changeMs, rearmMs, connectSeconds, rss, perThousand, serviceCpuUs, harnessCpuUs);
    }

    /// <summary>
    /// Waits for every watcher's answer and checks each carries the pushed version (with replicas, the others learn it from
    /// Consul; only a change raises a replica's index, so a parked watch answers with it or not at all).
    /// </summary>
    private static async Task<(long Index, long ReceivedAt, string? PolicyVersion)[]> WhenAllWithPolicyAsync(Task<(long Index, long ReceivedAt, string? PolicyVersion)>[] polls, string pushedVersion, CancellationToken cancellationToken)
    {
        var answers = await Task.WhenAll(polls).WaitAsync(cancellationToken);
        for (var i = 0; i < answers.Length; i++)
        {
            if (answers[i].PolicyVersion != pushedVersion)
            {
                throw new InvalidOperationException($"Watcher {i} woke with policy version '{answers[i].PolicyVersion}', not the pushed '{pushedVersion}'.");
            }
        }

        return answers;
    }

    private static string Instance(int replica, int? watcher) =>
        watcher is { } w
            ? string.Create(CultureInfo.InvariantCulture, $"watcher-r{replica + 1}-{w:D5}")
            : string.Create(CultureInfo.InvariantCulture, $"watcher-r{replica + 1}-");

    // A real policy document, different every round (a timeout of round + 1 seconds).
    private static string PolicyDocument(int round) =>
        string.Create(CultureInfo.InvariantCulture, $$"""{ "Policy": { "Destinations": { "upstream": { "Timeout": "00:00:{{round % 50 + 1:D2}}" } } } }""");

    private static async Task<(long Index, long ReceivedAt, string? PolicyVersion)> WatchAsync(HttpClient http, int watcher, int replicas, long index, string marker, bool reconnect, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, string.Create(CultureInfo.InvariantCulture, $"v1/workloads/self/watch?index={index}&wait=120s"));
        request.Headers.Add("X-Mesh-Instance", Instance(watcher % replicas, watcher));

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

    private static async Task<int> CountReportsAsync(HttpClient admin, string instancePrefix, string marker, CancellationToken cancellationToken)
    {
        using var stream = await admin.GetStreamAsync("v1/workloads", cancellationToken);
        using var doc = await JsonDocument.ParseAsync(stream, cancellationToken: cancellationToken);
        var count = 0;
        foreach (var w in doc.RootElement.GetProperty("workloads").EnumerateArray())
        {
            if (w.TryGetProperty("policyVersion", out var p) && p.ValueKind == JsonValueKind.String && p.ValueEquals(marker)
                && w.TryGetProperty("instance", out var instance) && instance.ValueKind == JsonValueKind.String && instance.GetString()!.StartsWith(instancePrefix, StringComparison.Ordinal))
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
        var csr = CertificateSigningRequests.Create(key, SpiffeId.Create(TrustDomain, SpiffeId.DefaultNamespace, WatcherService));
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
