using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using MeshKit.Balancing;
using MeshKit.Identity;
using MeshKit.Testing;
using MeshKit.Testing.Consul;
using MeshKit.Tests.Discovery;
using MeshKit.Tests.Identity;
using MeshKit.Tests.Traffic;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Tests.Chaos;

/// <summary>
/// Failure scenarios users of other meshes met in production, each under continuous load, each reporting requests sent,
/// requests failed and the slowest request. Short variants with 5 s certificates run in CI; tests/soak/run.sh runs longer.
/// </summary>
[Trait("Area", "Chaos")]
[Collection(LoadCollection.Name)]
public sealed class ChaosTests(MeshTestBed bed) : IClassFixture<MeshTestBed>
{
    [Fact]
    public async Task A_CA_rotation_in_three_steps_under_load_fails_no_request()
    {
        await using var controlPlane = await ControlPlaneHost.StartAsync(Grants("orders", "frontend"));
        await using var orders = await MeshAppHost.StartAsync(controlPlane, "orders", MeshTestBed.Token, map: app => app.MapGet("/", () => "ok"));
        await using var frontend = await MeshAppHost.StartAsync(controlPlane, "frontend", MeshTestBed.Token, meshEndpoint: false,
            settings: new Dictionary<string, string?>(orders.AsStaticEndpoint("orders")),
            configureServices: s => s.AddMeshClient("orders"));
        var client = frontend.Client("orders");
        using var admin = controlPlane.CreateAdminClient();
        var workloads = new[] { orders, frontend };

        await using var load = ScenarioLoad.Start("ca-rotation", async ct => await client.GetStringAsync("/", ct));
        await load.CallsAsync(200);

        // 1. A new root joins the bundle; every workload learns it on the control channel.
        var added = await (await admin.PostAsync("v1/ca/roots", null, TestContext.Current.CancellationToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        var newRoot = added.GetProperty("roots").EnumerateArray().Single(r => !r.GetProperty("active").GetBoolean()).GetProperty("id").GetString();
        var bothRoots = added.GetProperty("bundleVersion").GetString();
        await Eventually.WaitAsync(() => workloads.All(w => w.Services.GetRequiredService<WorkloadIdentitySource>().Current!.Bundle.Version == bothRoots), TimeSpan.FromSeconds(10), "every workload to trust both roots");
        await load.ForAsync(TimeSpan.FromSeconds(1));

        // 2. Issuance switches to the new root; workloads told so renew at once.
        (await admin.PostAsync($"v1/ca/roots/{newRoot}/activate", null, TestContext.Current.CancellationToken)).EnsureSuccessStatusCode();
        var issuer = (await admin.GetFromJsonAsync<JsonElement>("v1/workloads", TestContext.Current.CancellationToken)).GetProperty("activeIssuer").GetString();
        await Eventually.WaitAsync(async () =>
        {
            var list = await admin.GetFromJsonAsync<JsonElement>("v1/workloads");
            var mine = list.GetProperty("workloads").EnumerateArray().Where(w => Instances(workloads).Contains(w.GetProperty("instance").GetString())).ToList();
            return mine.Count == 2 && mine.All(w => w.GetProperty("certificateIssuer").GetString() == issuer);
        }, TimeSpan.FromSeconds(15), "every workload to hold a certificate from the new root (as /v1/workloads shows)");
        await load.CallsAsync(load.Sent + 200);

        // 3. The old root leaves the bundle.
        var oldRoot = added.GetProperty("roots").EnumerateArray().Single(r => r.GetProperty("active").GetBoolean()).GetProperty("id").GetString();
        var removed = await (await admin.DeleteAsync($"v1/ca/roots/{oldRoot}", TestContext.Current.CancellationToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        var finalBundle = removed.GetProperty("bundleVersion").GetString();
        await Eventually.WaitAsync(() => workloads.All(w => w.Services.GetRequiredService<WorkloadIdentitySource>().Current!.Bundle.Version == finalBundle), TimeSpan.FromSeconds(10), "every workload to drop the old root");
        await load.CallsAsync(load.Sent + 300);

        var result = await load.StopAsync();
        Assert.True(result.Failed == 0, result.ToString());
        Assert.Single(orders.Services.GetRequiredService<WorkloadIdentitySource>().Current!.Bundle.Roots);
    }

    [Fact]
    public async Task The_control_service_stopped_past_the_renewal_point_and_restarted_before_expiry_fails_no_request()
    {
        // 10 s certificates: renewal is due at about 5 s; the outage covers it and ends before expiry.
        await using var controlPlane = await ControlPlaneHost.StartAsync(Grants("orders", "frontend", lifetime: "00:00:10"));
        await using var orders = await MeshAppHost.StartAsync(controlPlane, "orders", MeshTestBed.Token, map: app => app.MapGet("/", () => "ok"));
        await using var frontend = await MeshAppHost.StartAsync(controlPlane, "frontend", MeshTestBed.Token, meshEndpoint: false,
            settings: new Dictionary<string, string?>(orders.AsStaticEndpoint("orders")),
            configureServices: s => s.AddMeshClient("orders"));
        var client = frontend.Client("orders");
        var identity = frontend.Services.GetRequiredService<WorkloadIdentitySource>();

        // Both workloads take a fresh certificate now, so the outage can span both renewal points and still end before
        // either certificate expires (renewal is due at about 5 s, expiry at 10 s).
        var identities = new[] { frontend, orders }.Select(h => h.Services.GetRequiredService<WorkloadIdentitySource>()).ToArray();
        var before = identities.Select(i => i.Current!.SerialNumber).ToArray();
        foreach (var source in identities)
        {
            source.RequestRenewal("the test wants fresh certificates before the outage");
        }

        await Eventually.WaitAsync(() => identities.Zip(before).All(p => p.First.Current!.SerialNumber != p.Second), TimeSpan.FromSeconds(10), "fresh certificates");
        var held = identity.Current!;

        await using var load = ScenarioLoad.Start("control-service-outage-past-renewal", async ct => await client.GetStringAsync("/", ct));
        await controlPlane.StopAsync();
        await Eventually.WaitAsync(
            () => frontend.Metrics.Sum("mesh.identity.renewals", "mesh.outcome", "failure") >= 1 && orders.Metrics.Sum("mesh.identity.renewals", "mesh.outcome", "failure") >= 1,
            TimeSpan.FromSeconds(10),
            "renewal to fail on both workloads while the control service is down");
        Assert.Equal(held.SerialNumber, identity.Current!.SerialNumber);

        await controlPlane.StartAsync();
        await Eventually.WaitAsync(() => identity.Current!.SerialNumber != held.SerialNumber, TimeSpan.FromSeconds(10), "renewals to resume");
        await load.CallsAsync(load.Sent + 200);

        var result = await load.StopAsync();
        Assert.True(result.Failed == 0, result + "\n" + Diagnostics(orders, frontend));
    }

    [Fact]
    public async Task Consul_stopped_under_load_fails_no_request_to_known_endpoints_and_new_instances_arrive_after_it_returns()
    {
        await using var consul = await ConsulDouble.StartAsync();
        await using var a = await ConsulServiceApp.StartAsync(bed, consul, "orders", "orders-a");
        await using var b = await ConsulServiceApp.StartAsync(bed, consul, "orders", "orders-b");
        await using var frontend = await ConsulMeshApps.StartCallerAsync(bed, consul);
        var client = frontend.MeshClient();
        await Eventually.WaitAsync(async () => (await frontend.EndpointsAsync()).Endpoints.Length == 2, TimeSpan.FromSeconds(10), "both instances discovered");

        await using var load = ScenarioLoad.Start("consul-outage", async ct => await client.GetStringAsync("/", ct));
        await load.CallsAsync(100);
        await consul.StopAsync();
        await load.ForAsync(TimeSpan.FromSeconds(3));
        if (load.Failed > 0)
        {
            Assert.Fail((await load.StopAsync()) + "\n" + Diagnostics(a.Host, b.Host, frontend));
        }

        await consul.StartAsync();
        await using var c = await ConsulServiceApp.StartAsync(bed, consul, "orders", "orders-c");
        await Eventually.WaitAsync(() => c.Served > 0, TimeSpan.FromSeconds(15), "the new instance to be discovered and called");

        var result = await load.StopAsync();
        Assert.True(result.Failed == 0, result.ToString());
    }

    [Fact]
    public async Task A_rolling_restart_of_three_instances_with_graceful_drain_fails_no_request()
    {
        await using var consul = await ConsulDouble.StartAsync();
        var instances = new List<ConsulServiceApp>();
        for (var i = 0; i < 3; i++)
        {
            instances.Add(await ConsulServiceApp.StartAsync(bed, consul, "orders", $"orders-{i}", Drain()));
        }

        await using var frontend = await ConsulMeshApps.StartCallerAsync(bed, consul);
        var client = frontend.MeshClient();
        await Eventually.WaitAsync(async () => (await frontend.EndpointsAsync()).Endpoints.Length == 3, TimeSpan.FromSeconds(10), "three instances discovered");

        await using var load = ScenarioLoad.Start("rolling-restart", async ct => await client.GetStringAsync("/", ct));
        await load.CallsAsync(100);
        for (var i = 0; i < 3; i++)
        {
            // Stop one (fail its check, deregister, drain, GOAWAY), start its replacement, wait until callers use it.
            await instances[i].DisposeAsync();
            instances[i] = await ConsulServiceApp.StartAsync(bed, consul, "orders", $"orders-{i}-new", Drain());
            var replacement = instances[i];
            await Eventually.WaitAsync(() => replacement.Served > 0, TimeSpan.FromSeconds(15), $"replacement {i} to serve");
            await load.ForAsync(TimeSpan.FromSeconds(1));
        }

        await load.CallsAsync(load.Sent + 100);
        var result = await load.StopAsync();
        foreach (var instance in instances)
        {
            await instance.DisposeAsync();
        }

        Assert.True(result.Failed == 0, result.ToString());
    }

    [Fact]
    public async Task One_of_three_upstream_processes_killed_under_load_keeps_success_at_least_99_9_percent_and_is_ejected()
    {
        var processes = new List<UpstreamProcess>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                processes.Add(await UpstreamProcess.StartAsync(bed.ControlPlane, $"orders-{i}"));
            }

            var settings = new Dictionary<string, string?>();
            for (var i = 0; i < 3; i++)
            {
                settings[$"Mesh:Discovery:Static:orders:{i}:Address"] = $"127.0.0.1:{processes[i].MeshPort}";
            }

            await using var frontend = await MeshAppHost.StartAsync(bed.ControlPlane, "frontend", MeshTestBed.Token, settings: settings, meshEndpoint: false,
                configureServices: s => s.AddMeshClient("orders"));
            var client = frontend.Client("orders");
            var states = frontend.Services.GetRequiredService<EndpointStateRegistry>();

            await using var load = ScenarioLoad.Start("crash", async ct => await client.GetStringAsync("/", ct), workers: 8, pause: TimeSpan.FromMilliseconds(1));
            await load.CallsAsync(500);

            var victim = processes[1];
            var killed = Stopwatch.StartNew();
            victim.Kill();
            await Eventually.WaitAsync(() => states.Find("orders", $"127.0.0.1:{victim.MeshPort}")?.IsEjected(Stopwatch.GetTimestamp()) == true, TimeSpan.FromSeconds(10), "the dead instance to be ejected", TimeSpan.FromMilliseconds(5));
            var ejectedAfter = killed.Elapsed;
            await load.CallsAsync(load.Sent + 1500);

            var result = await load.StopAsync();
            ScenarioLoad.ReportFigure("crash", "ejected_after_ms", ejectedAfter.TotalMilliseconds);
            Assert.True(result.SuccessRate >= 0.999, result.ToString());
            Assert.True(ejectedAfter < TimeSpan.FromSeconds(5), $"ejected after {ejectedAfter}");
        }
        finally
        {
            foreach (var process in processes)
            {
                process.Dispose();
            }
        }
    }

    [Fact]
    public async Task A_hanging_upstream_makes_timeouts_fire_while_the_retry_budget_holds_and_the_thread_pool_stays_responsive()
    {
        await using var hanging = await Upstream.StartAsync(bed, "orders", "v1", async (http, _) => await Task.Delay(Timeout.Infinite, http.RequestAborted));
        await using var frontend = await Caller.StartAsync(bed, "orders", [hanging], new Dictionary<string, string?>
        {
            ["Mesh:Policy:Defaults:Timeout"] = "00:00:01.500",
            ["Mesh:Policy:Defaults:AttemptTimeout"] = "00:00:00.300",
            ["Mesh:Policy:Defaults:Retry:MaxRetries"] = "3",
            ["Mesh:Policy:Defaults:Retry:BaseDelay"] = "00:00:00",
            ["Mesh:Policy:Defaults:OutlierDetection:Enabled"] = "false",
        });
        var client = frontend.Client("orders");

        // A probe measures how late a 10 ms timer fires: starved threads would show as large delays.
        using var probeStop = new CancellationTokenSource();
        var worstDelay = TimeSpan.Zero;
        var probe = Task.Run(async () =>
        {
            while (!probeStop.IsCancellationRequested)
            {
                var started = Stopwatch.GetTimestamp();
                await Task.Delay(10, TestContext.Current.CancellationToken);
                var late = Stopwatch.GetElapsedTime(started) - TimeSpan.FromMilliseconds(10);
                worstDelay = late > worstDelay ? late : worstDelay;
            }
        }, TestContext.Current.CancellationToken);

        var (succeeded, failed, _) = await Caller.LoadAsync(client, 300, 32, limit: TimeSpan.FromSeconds(60));
        await probeStop.CancelAsync();
        await probe;

        ScenarioLoad.ReportFigure("hanging-upstream", "failed_of_300", failed);
        ScenarioLoad.ReportFigure("hanging-upstream", "upstream_requests_per_call", (double)hanging.Served / 300);
        ScenarioLoad.ReportFigure("hanging-upstream", "worst_timer_delay_ms", worstDelay.TotalMilliseconds);
        Assert.Equal(0, succeeded);
        Assert.Equal(300, failed);
        var timeout = await Assert.ThrowsAsync<MeshKit.Transport.MeshCallException>(() => client.GetStringAsync("/", TestContext.Current.CancellationToken));
        Assert.Equal("timeout", timeout.Reason);
        var extra = (double)(hanging.Served - 300) / 300;
        Assert.True(extra <= 0.25, $"retries added {extra:P0} extra requests (budget 20 % plus the floor)");
        Assert.True(frontend.Metrics.Sum("mesh.client.retry_budget.exhausted") > 0);
        Assert.True(worstDelay < TimeSpan.FromSeconds(1), $"a 10 ms timer fired {worstDelay.TotalMilliseconds:0} ms late");
        Assert.True(ThreadPool.ThreadCount < 200, $"{ThreadPool.ThreadCount} thread-pool threads");
    }

    private static Dictionary<string, string?> Grants(string a, string b, string lifetime = "00:00:05") => new()
    {
        ["ControlPlane:JoinTokens:t:Token"] = MeshTestBed.Token,
        ["ControlPlane:JoinTokens:t:Services:0"] = a,
        ["ControlPlane:JoinTokens:t:Services:1"] = b,
        ["ControlPlane:CertificateLifetime"] = lifetime,
    };

    private static string Diagnostics(params MeshAppHost[] hosts) =>
        string.Join("\n", hosts.SelectMany(h => h.Logs.Entries
            .Where(e => e.EventId.Id is 4001 or 5001 or 5002 or 2002 or 2003 or 2004 or 2006 or 2101 or 2102 or 2103)
            .Select(e => $"{h.Service} {e.EventId.Id} {e.Message}")).Take(60));

    private static Dictionary<string, string?> Drain() => new() { ["Mesh:Discovery:Consul:DrainTimeout"] = "00:00:05" };

    private static HashSet<string?> Instances(IEnumerable<MeshAppHost> hosts) =>
        [.. hosts.Select(h => h.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<MeshKit.MeshOptions>>().Value.Service.InstanceId)];
}
