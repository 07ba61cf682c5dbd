using System.Net;
using MeshKit.ControlChannel;
using MeshKit.Identity;
using MeshKit.Policy;
using MeshKit.Testing;
using MeshKit.Testing.Consul;
using MeshKit.Tests.Chaos;
using MeshKit.Tests.Discovery;
using MeshKit.Tests.Identity;
using MeshKit.Tests.Traffic;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Tests.ControlChannel;

/// <summary>
/// A replicated control service, seen from its workloads: three replicas share one root and one Consul; a workload that
/// knows them all (by address, or through Consul) keeps signing and watching when the one it uses stops, moves within
/// about a second, and its mesh calls never notice.
/// </summary>
[Trait("Area", "ControlPlaneHA")]
[Collection(LoadCollection.Name)]
public sealed class ControlPlaneFailoverTests
{
    /// <summary>Only frontend may read orders (central only: orders has no authorization of its own).</summary>
    private const string FrontendOnly = """
        { "Authorization": { "DefaultAction": "Deny", "Rules": [
            { "Name": "frontend-reads", "From": { "Services": [ "frontend" ] }, "To": { "Paths": [ "/api/*" ], "Methods": [ "GET" ] } } ] } }
        """;

    [Fact]
    public async Task A_workload_that_knows_three_replica_addresses_keeps_renewing_and_watching_when_the_replica_it_uses_stops()
    {
        await using var set = await ReplicaSet.StartAsync();
        await using var orders = await MeshAppHost.StartAsync(set.Replicas[0], "orders", MeshTestBed.Token, set.AddressSettings(Instance("orders-1")), map: MapOrders);
        await using var frontend = await MeshAppHost.StartAsync(set.Replicas[0], "frontend", MeshTestBed.Token, set.AddressSettings(Instance("frontend-1").Concat(orders.AsStaticEndpoint("orders"))),
            configureServices: s => s.AddMeshClient("orders"), meshEndpoint: false);
        var client = frontend.Client("orders");
        await using var load = ScenarioLoad.Start("control-plane-failover", async ct => (await client.GetAsync("/api/orders", ct)).EnsureSuccessStatusCode());
        await load.CallsAsync(50);

        // The replica frontend uses stops; then the one orders uses (which may be where frontend went): both move at least once.
        var first = set.Using(frontend);
        var times = await ReplicaSet.StopAndTimeFailoverAsync(first, frontend, orders);
        var second = set.Using(orders);
        times = [.. times, .. await ReplicaSet.StopAndTimeFailoverAsync(second, frontend, orders)];
        var survivor = set.Replicas.Single(r => r != first && r != second);
        foreach (var time in times)
        {
            ScenarioLoad.ReportFigure("control-plane-failover", "stop-to-first-answer-ms", time.TotalMilliseconds);
            TestContext.Current.TestOutputHelper?.WriteLine($"stop of a replica to the first answer from another: {time.TotalMilliseconds:0} ms");
            Assert.True(time < TimeSpan.FromSeconds(1), $"a workload took {time.TotalMilliseconds:0} ms to move to another replica");
        }

        // Both watch the survivor now, and renew there.
        Assert.Same(survivor, set.Using(frontend));
        Assert.Same(survivor, set.Using(orders));
        await Eventually.WaitAsync(async () => await ReplicaSet.HasPolledAsync(survivor, "frontend-1") && await ReplicaSet.HasPolledAsync(survivor, "orders-1"),
            TimeSpan.FromSeconds(5), "both workloads to poll the survivor");
        var serials = new[] { Serial(frontend), Serial(orders) };
        await Eventually.WaitAsync(() => Serial(frontend) != serials[0] && Serial(orders) != serials[1], TimeSpan.FromSeconds(6), "both workloads to renew on the survivor");

        // A central policy written on the survivor reaches orders through its watch there within a couple of seconds.
        var started = System.Diagnostics.Stopwatch.StartNew();
        var version = await ReplicaSet.PutPolicyAsync(survivor, "orders", FrontendOnly);
        var policies = orders.Services.GetRequiredService<PolicyWatcher>();
        await Eventually.WaitAsync(() => policies.CentralVersion == version, TimeSpan.FromSeconds(3), "orders to apply the policy written on the survivor");
        ScenarioLoad.ReportFigure("control-plane-failover", "policy-put-to-applied-ms", started.Elapsed.TotalMilliseconds);

        var result = await load.StopAsync();
        Assert.True(result.Sent > 100, result.ToString());
        Assert.True(result.Failed == 0, result.ToString());

        // Each replica signs with its own intermediate of one root: a move to another replica is not a CA rotation, so
        // nobody renewed "at once" (event 2006) on moving.
        Assert.DoesNotContain(frontend.Logs.Entries.Concat(orders.Logs.Entries), e => e.EventId.Id == 2006);
    }

    [Fact]
    public async Task A_workload_that_finds_the_replicas_in_Consul_keeps_renewing_and_watching_when_the_replica_it_uses_stops()
    {
        await using var set = await ReplicaSet.StartAsync();

        // The replicas register as mesh-control; the workloads know nothing but that name (and Consul).
        var byConsul = new Dictionary<string, string?>
        {
            ["Mesh:ControlPlane:Address"] = string.Empty,
            ["Mesh:ControlPlane:ConsulService"] = ReplicaSet.ConsulService,
            ["Mesh:ControlPlane:WatchWait"] = "00:00:10",
        };
        await using var orders = await MeshAppHost.StartAsync(set.Replicas[0], "orders", MeshTestBed.Token, ConsulMeshApps.Settings(set.Consul, "orders-1", byConsul),
            map: MapOrders, addOns: ConsulMeshApps.AddConsul);
        await using var frontend = await MeshAppHost.StartAsync(set.Replicas[0], "frontend", MeshTestBed.Token,
            ConsulMeshApps.Settings(set.Consul, "frontend-1", new Dictionary<string, string?>(byConsul.Concat(orders.AsStaticEndpoint("orders")))),
            configureServices: s => s.AddMeshClient("orders"), meshEndpoint: false, addOns: ConsulMeshApps.AddConsul);
        var addresses = frontend.Services.GetRequiredService<IControlPlaneAddresses>();
        Assert.IsNotType<ConfiguredControlPlaneAddresses>(addresses);
        await Eventually.WaitAsync(() => addresses.Current.Count == 3, TimeSpan.FromSeconds(5), "frontend to learn the three replicas from Consul");
        Assert.Equal(set.Replicas.Select(r => r.BaseAddress.ToString()).Order(), addresses.Current.Select(a => a.ToString()).Order());

        var client = frontend.Client("orders");
        await using var load = ScenarioLoad.Start("control-plane-failover-consul", async ct => (await client.GetAsync("/api/orders", ct)).EnsureSuccessStatusCode());
        await load.CallsAsync(50);

        var stopped = set.Using(frontend);
        var times = await ReplicaSet.StopAndTimeFailoverAsync(stopped, frontend, orders);
        foreach (var time in times)
        {
            ScenarioLoad.ReportFigure("control-plane-failover-consul", "stop-to-first-answer-ms", time.TotalMilliseconds);
            TestContext.Current.TestOutputHelper?.WriteLine($"stop of a replica to the first answer from another: {time.TotalMilliseconds:0} ms");
            Assert.True(time < TimeSpan.FromSeconds(1), $"a workload took {time.TotalMilliseconds:0} ms to move to another replica");
        }

        // The stopped replica deregistered: it leaves the list the workloads hold.
        await Eventually.WaitAsync(() => addresses.Current.Count == 2 && !addresses.Current.Contains(stopped.BaseAddress), TimeSpan.FromSeconds(5), "the stopped replica to leave frontend's list");

        var now = set.Using(frontend);
        var serial = Serial(frontend);
        await Eventually.WaitAsync(() => Serial(frontend) != serial, TimeSpan.FromSeconds(6), "frontend to renew on another replica");
        var version = await ReplicaSet.PutPolicyAsync(set.Replicas.First(r => r != stopped), "orders", FrontendOnly);
        await Eventually.WaitAsync(() => orders.Services.GetRequiredService<PolicyWatcher>().CentralVersion == version, TimeSpan.FromSeconds(3), "orders to apply the policy");

        var result = await load.StopAsync();
        Assert.True(result.Sent > 100, result.ToString());
        Assert.True(result.Failed == 0, result.ToString());
        Assert.NotSame(stopped, now);
    }

    [Fact]
    public async Task A_replica_that_goes_silent_under_a_waiting_poll_is_left_within_a_few_seconds_not_at_the_end_of_the_wait()
    {
        // Minute-long certificates: no renewal runs during the test, so only the waiting poll can notice the silence.
        await using var set = await ReplicaSet.StartAsync(2, (_, settings) => settings["ControlPlane:CertificateLifetime"] = "00:01:00");
        await using var relay = TcpRelay.Start(new IPEndPoint(IPAddress.Loopback, set.Replicas[0].BaseAddress.Port));
        var silent = new Uri($"https://127.0.0.1:{relay.Port}/");

        // The relay first (the first draw picks the first address), then the second replica.
        await using var orders = await MeshAppHost.StartAsync(set.Replicas[0], "orders", MeshTestBed.Token, new Dictionary<string, string?>
            {
                ["Mesh:ControlPlane:Address"] = silent.ToString(),
                ["Mesh:ControlPlane:Addresses:0"] = set.Replicas[1].BaseAddress.ToString(),
                ["Mesh:ControlPlane:WatchWait"] = "00:00:30",
                ["Mesh:Service:InstanceId"] = "orders-1",
            },
            configureServices: FirstAddressFirst, meshEndpoint: false);
        var client = orders.Services.GetRequiredService<ControlPlaneClient>();
        Assert.Equal(silent, client.CurrentReplica);
        await Eventually.WaitAsync(() => ReplicaSet.HasPolledAsync(set.Replicas[0], "orders-1"), TimeSpan.FromSeconds(5), "orders to poll through the relay");

        // The replica's host goes silent: no FIN, no RST, the poll just gets no answer. HTTP/2 keep-alive pings notice.
        var stopwatch = System.Diagnostics.Stopwatch.StartNew();
        relay.Freeze();
        await Eventually.WaitAsync(() => client.CurrentReplica == set.Replicas[1].BaseAddress, TimeSpan.FromSeconds(12), "orders to leave the silent replica", TimeSpan.FromMilliseconds(5));
        var elapsed = stopwatch.Elapsed;
        ScenarioLoad.ReportFigure("control-plane-failover-silent", "silence-to-first-answer-ms", elapsed.TotalMilliseconds);
        TestContext.Current.TestOutputHelper?.WriteLine($"a silent replica to the first answer from another: {elapsed.TotalMilliseconds:0} ms");
        // About 4 s alone (a ping period, its timeout, the handler's once-a-second check); once 7.2 s in a CI run on the
        // loaded 2 cores. The bound shows what matters: within seconds, far from the end of the 30 s wait.
        Assert.True(elapsed < TimeSpan.FromSeconds(8), $"orders took {elapsed.TotalMilliseconds:0} ms to leave a silent replica");
        Assert.Contains(orders.Logs.Entries, e => e.EventId.Id == 2121 && e.Message.Contains("watch", StringComparison.Ordinal));
        await Eventually.WaitAsync(() => ReplicaSet.HasPolledAsync(set.Replicas[1], "orders-1"), TimeSpan.FromSeconds(5), "orders to poll the other replica");
    }

    [Fact]
    public async Task Replicas_that_cannot_issue_or_cannot_say_what_the_central_policy_is_are_left_for_one_that_can()
    {
        // healthy has its own Consul, holding orders' central policy.
        await using var healthyConsul = await ConsulDouble.StartAsync();
        await using var healthy = await ControlPlaneHost.StartAsync(ReplicaSet.Settings(healthyConsul));
        var version = await ReplicaSet.PutPolicyAsync(healthy, "orders", FrontendOnly);

        // blind read the revocation lists once, then restarted while its Consul is down: it issues (from its copy), but
        // cannot say what the central policy is ("unknown"). fresh never read the lists: it refuses to issue (503).
        await using var downConsul = await ConsulDouble.StartAsync();
        await using var blind = await ControlPlaneHost.StartAsync(ReplicaSet.SameRoot(ReplicaSet.Settings(downConsul), healthy));
        // Its copies of both lists are on disk once it has read them (it reads them in the background after its start).
        await Eventually.WaitAsync(
            () => File.Exists(Path.Combine(blind.DataDirectory, "revoked-identities.json")) && File.Exists(Path.Combine(blind.DataDirectory, "revoked-tokens.json")),
            TimeSpan.FromSeconds(5), "blind to read the revocation lists");
        await downConsul.StopAsync();
        await blind.StopAsync();
        await blind.StartAsync();
        await using var fresh = await ControlPlaneHost.StartAsync(ReplicaSet.SameRoot(ReplicaSet.Settings(downConsul), healthy));

        // fresh first, then blind, then healthy: the sign moves from fresh to blind, the watch from blind to healthy.
        await using var orders = await MeshAppHost.StartAsync(healthy, "orders", MeshTestBed.Token, new Dictionary<string, string?>
            {
                ["Mesh:ControlPlane:Address"] = fresh.BaseAddress.ToString(),
                ["Mesh:ControlPlane:Addresses:0"] = blind.BaseAddress.ToString(),
                ["Mesh:ControlPlane:Addresses:1"] = healthy.BaseAddress.ToString(),
                ["Mesh:Service:InstanceId"] = "orders-1",
            },
            configureServices: FirstAddressFirst, map: MapOrders);

        // It started, on the central policy (no "start on the local policy alone"), which it got from healthy.
        Assert.Equal(version, orders.Services.GetRequiredService<PolicyWatcher>().CentralVersion);
        Assert.Equal(healthy.BaseAddress, orders.Services.GetRequiredService<ControlPlaneClient>().CurrentReplica);
        Assert.Contains(orders.Logs.Entries, e => e.EventId.Id == 2121 && e.Message.Contains(fresh.BaseAddress.ToString(), StringComparison.Ordinal)
            && e.Message.Contains("revocations-unknown", StringComparison.Ordinal));
        Assert.Contains(orders.Logs.Entries, e => e.EventId.Id == 2123 && e.Message.Contains(blind.BaseAddress.ToString(), StringComparison.Ordinal));
        Assert.DoesNotContain(orders.Logs.Entries, e => e.EventId.Id == 2105);

        // It stays there: polls go to healthy, not back and forth (each move would restart the watch at index 0).
        await Eventually.WaitAsync(() => ReplicaSet.HasPolledAsync(healthy, "orders-1"), TimeSpan.FromSeconds(5), "orders to poll healthy");
        var moves = orders.Logs.Entries.Count(e => e.EventId.Id == 2122);
        var polls = healthy.Metrics.Sum("mesh.control_plane.watch.requests");
        await Eventually.WaitAsync(() => healthy.Metrics.Sum("mesh.control_plane.watch.requests") >= polls + 3, TimeSpan.FromSeconds(10), "three more polls on healthy");
        Assert.Equal(moves, orders.Logs.Entries.Count(e => e.EventId.Id == 2122));
        Assert.Equal(healthy.BaseAddress, orders.Services.GetRequiredService<ControlPlaneClient>().CurrentReplica);
    }

    [Fact]
    public async Task A_replica_that_lags_behind_the_shared_store_does_not_roll_back_the_central_policy_after_a_move()
    {
        // Two replicas whose stores disagree, as a replica that lags behind Consul would: ahead holds a newer document
        // (a higher ModifyIndex) than behind. The store revision orders them, whichever replica answers.
        await using var aheadConsul = await ConsulDouble.StartAsync();
        await using var behindConsul = await ConsulDouble.StartAsync();
        await using var ahead = await ControlPlaneHost.StartAsync(ReplicaSet.Settings(aheadConsul));
        await using var behind = await ControlPlaneHost.StartAsync(ReplicaSet.SameRoot(ReplicaSet.Settings(behindConsul), ahead));
        var older = await ReplicaSet.PutPolicyAsync(behind, "orders", FrontendOnly);
        await BumpIndexAsync(aheadConsul, 20);
        var newer = await ReplicaSet.PutPolicyAsync(ahead, "orders", FrontendOnly.Replace("frontend-reads", "frontend-reads-v2", StringComparison.Ordinal));

        await using var orders = await MeshAppHost.StartAsync(ahead, "orders", MeshTestBed.Token, new Dictionary<string, string?>
            {
                ["Mesh:ControlPlane:Address"] = ahead.BaseAddress.ToString(),
                ["Mesh:ControlPlane:Addresses:0"] = behind.BaseAddress.ToString(),
                ["Mesh:Service:InstanceId"] = "orders-1",
            },
            configureServices: FirstAddressFirst, map: MapOrders);
        var policies = orders.Services.GetRequiredService<PolicyWatcher>();
        Assert.Equal(newer, policies.CentralVersion);

        // ahead stops; orders watches behind, whose older document is not applied over the newer one it holds.
        await ReplicaSet.StopAndTimeFailoverAsync(ahead, orders);
        await Eventually.WaitAsync(() => orders.Logs.Entries.Any(e => e.EventId.Id == 2124), TimeSpan.FromSeconds(5), "orders to ignore the lagging replica's document");
        Assert.Equal(newer, policies.CentralVersion);
        Assert.NotEqual(older, policies.CentralVersion);

        // Once behind has a document newer than the one held, it applies.
        await BumpIndexAsync(behindConsul, 40);
        var newest = await ReplicaSet.PutPolicyAsync(behind, "orders", FrontendOnly.Replace("frontend-reads", "frontend-reads-v3", StringComparison.Ordinal));
        await Eventually.WaitAsync(() => policies.CentralVersion == newest, TimeSpan.FromSeconds(5), "orders to apply the newer document from behind");
    }

    private static async Task BumpIndexAsync(ConsulDouble consul, int writes)
    {
        using var client = ConsulMeshApps.Client(consul);
        for (var i = 0; i < writes; i++)
        {
            await client.PutKeyAsync($"bump/{i}", "x", cancellationToken: TestContext.Current.CancellationToken);
        }
    }

    /// <summary>Every draw of the mesh's random source is 0: the first replica tried is the first address.</summary>
    private static void FirstAddressFirst(IServiceCollection services) => services.AddSingleton(new MeshRandom(new Hosting.ScriptedRandom(0)));

    /// <summary>
    /// The instance ID, and a 10 s wait: a replica that stops must send its watchers away at once, not leave them to find
    /// out when their poll ends.
    /// </summary>
    private static Dictionary<string, string?> Instance(string id) => new() { ["Mesh:Service:InstanceId"] = id, ["Mesh:ControlPlane:WatchWait"] = "00:00:10" };

    private static string Serial(MeshAppHost workload) => workload.Services.GetRequiredService<WorkloadIdentitySource>().Current!.SerialNumber;

    private static void MapOrders(WebApplication app) => app.MapGet("/api/orders", () => "orders");
}
