using System.Diagnostics;
using MeshKit.ControlChannel;
using MeshKit.Testing;
using MeshKit.Tests.Chaos;
using MeshKit.Tests.Discovery;
using MeshKit.Tests.Identity;
using MeshKit.Tests.Traffic;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Tests.ControlChannel;

/// <summary>
/// Chaos with three control-service replicas running as real processes on the Consul double (5 s certificates, so every
/// workload renews about every 2 s): one killed with SIGKILL under load, and a rolling restart of all three under load.
/// No mesh request may fail, and certificates must keep coming from the replicas that are up.
/// </summary>
[Trait("Area", "ControlPlaneHA")]
[Trait("Area", "Chaos")]
[Collection(LoadCollection.Name)]
public sealed class ReplicaProcessChaosTests
{
    /// <summary>A certificate's lifetime (ControlPlaneHost.DefaultSettings) and a margin: past it, no certificate from before is in use.</summary>
    private static readonly TimeSpan CertificateLifetime = TimeSpan.FromSeconds(5.5);

    [Fact]
    public async Task A_replica_killed_with_SIGKILL_under_load_fails_no_request_and_its_workloads_renew_at_the_others()
    {
        await using var set = await ProcessReplicaSet.StartAsync();
        var (orders, frontend) = await StartWorkloadsAsync(set);
        await using var _ = orders;
        await using var __ = frontend;
        MeshAppHost[] workloads = [orders, frontend];
        using var renewals = set.RecordRenewals(workloads);
        var client = frontend.Client("orders");
        await using var load = ScenarioLoad.Start("replica-sigkill", async ct => (await client.GetAsync("/api/orders", ct)).EnsureSuccessStatusCode());
        await load.CallsAsync(50);

        // The victim is the replica orders talks to (workloads draw their first replica at random).
        var victim = set.Using(orders);
        Assert.True(victim >= 0, "orders has talked to no replica yet");
        var wasLeader = await ProcessReplicaSet.IsLeaderAsync(set.Replicas[victim]);
        var clock = Stopwatch.StartNew();
        var killedAt = DateTimeOffset.MaxValue;

        // Failover: how long until each workload that used it got its first answer from another replica.
        var moved = await set.TimeFailoverAsync(
            victim,
            () =>
            {
                set.Replicas[victim].Kill();
                killedAt = DateTimeOffset.UtcNow; // the process is gone: whatever comes later was signed elsewhere
                return Task.CompletedTask;
            },
            workloads);

        // Renewals go on at the others: every workload gets two more certificates, none from the dead replica; and the load
        // runs past one certificate lifetime after the kill, so nothing signed before it is still in use.
        await Eventually.WaitAsync(() => workloads.All(w => renewals.Of(w.Service, killedAt).Count >= 2), TimeSpan.FromSeconds(15), "every workload to renew twice after the kill");
        if (clock.Elapsed < CertificateLifetime)
        {
            await load.ForAsync(CertificateLifetime - clock.Elapsed);
        }

        var result = await load.StopAsync();
        Assert.True(result.Failed == 0, result.ToString());
        var after = renewals.Since(killedAt);
        Assert.All(after, r => Assert.True(r.Replica >= 0 && r.Replica != victim, $"{r.Service} renewed at replica {r.Replica} after replica {victim} was killed"));

        // The control service sees it too: a survivor's registry names the replica each moved workload now talks to.
        foreach (var (workload, _) in moved)
        {
            var now = set.Replicas[set.Using(workload)];
            var id = await ProcessReplicaSet.ReplicaIdAsync(now);
            await Eventually.WaitAsync(async () => await ProcessReplicaSet.ListedReplicaAsync(now, Instance(workload.Service)) == id, TimeSpan.FromSeconds(5), $"{workload.Service} to be listed at replica {id}");
        }

        ScenarioLoad.ReportFigure("replica-sigkill", "failover_ms", moved.Max(m => m.Failover).TotalMilliseconds);
        ScenarioLoad.ReportFigure("replica-sigkill", "moved_workloads", moved.Count);
        ScenarioLoad.ReportFigure("replica-sigkill", "renewals_elsewhere_after_kill", after.Count);
        ScenarioLoad.ReportFigure("replica-sigkill", "killed_replica_was_leader", wasLeader ? 1 : 0);
    }

    [Fact]
    public async Task A_rolling_restart_of_all_three_replicas_under_load_fails_no_request_and_every_workload_still_renews()
    {
        var setupClock = Stopwatch.StartNew();
        await using var set = await ProcessReplicaSet.StartAsync();
        var (orders, frontend) = await StartWorkloadsAsync(set);
        var setup = setupClock.Elapsed.TotalMilliseconds;
        await using var _ = orders;
        await using var __ = frontend;
        MeshAppHost[] workloads = [orders, frontend];
        using var renewals = set.RecordRenewals(workloads);
        var client = frontend.Client("orders");
        await using var load = ScenarioLoad.Start("replica-rolling-restart", async ct => (await client.GetAsync("/api/orders", ct)).EnsureSuccessStatusCode());
        await load.CallsAsync(50);

        var started = DateTimeOffset.UtcNow;
        var restart = new List<double>();
        var stop = new List<double>();
        var moved = new List<(MeshAppHost Workload, TimeSpan Failover)>();
        for (var i = 0; i < set.Replicas.Count; i++)
        {
            // One after another, as a deployment does: SIGTERM, start again on the same port and data, healthy, next. The
            // workloads that used it leave it for another (each poll it answers while stopping says so).
            var phase = DateTimeOffset.UtcNow;
            var clock = Stopwatch.StartNew();
            var replica = set.Replicas[i];
            moved.AddRange(await set.TimeFailoverAsync(i, replica.StopAsync, workloads));
            stop.Add(clock.Elapsed.TotalMilliseconds);
            Assert.True(replica.ExitCode == 0, $"replica {i} exited with {replica.ExitCode} on SIGTERM:{Environment.NewLine}{replica.Output}");
            await replica.StartAsync();
            restart.Add(clock.Elapsed.TotalMilliseconds);

            // Every workload still renews: each got a certificate since this replica went down.
            await Eventually.WaitAsync(() => workloads.All(w => renewals.Of(w.Service, phase).Count >= 1), TimeSpan.FromSeconds(10), $"every workload to renew while replica {i} restarted");
        }

        // Each replica deregistered when it stopped and registered again when it started: the workloads list all three again.
        await Eventually.WaitAsync(() => workloads.All(w => Known(w) == 3), TimeSpan.FromSeconds(5), "the workloads to list the three replicas again");
        var result = await load.StopAsync();
        Assert.True(result.Failed == 0, result.ToString());

        // Each workload's replica was restarted at some point, so each moved at least once; none stayed without a control service.
        Assert.All(workloads, w => Assert.Contains(moved, m => m.Workload == w));
        var all = renewals.Since(started);
        ScenarioLoad.ReportFigure("replica-rolling-restart", "max_stop_ms", stop.Max());
        ScenarioLoad.ReportFigure("replica-rolling-restart", "max_restart_ms", restart.Max());
        ScenarioLoad.ReportFigure("replica-rolling-restart", "setup_ms", setup);
        ScenarioLoad.ReportFigure("replica-rolling-restart", "max_failover_ms", moved.Max(m => m.Failover).TotalMilliseconds);
        ScenarioLoad.ReportFigure("replica-rolling-restart", "failovers", moved.Count);
        ScenarioLoad.ReportFigure("replica-rolling-restart", "renewals", all.Count);
        ScenarioLoad.ReportFigure("replica-rolling-restart", "replicas_that_signed", all.Select(r => r.Replica).Where(r => r >= 0).Distinct().Count());
    }

    private static async Task<(MeshAppHost Orders, MeshAppHost Frontend)> StartWorkloadsAsync(ProcessReplicaSet set)
    {
        // As in production: the workloads find the replicas in Consul (mesh-control) and hold long watches, so a replica
        // that dies holds each workload's waiting poll; a killed one stays listed (its TTL check passing) for a while.
        var orders = await MeshAppHost.StartAsync(set.Replicas[0].BaseAddress, set.TrustBundlePath, "orders", MeshTestBed.Token,
            Settings("orders"), map: app => app.MapGet("/api/orders", () => "orders"), addOns: ConsulMeshApps.AddConsul);
        try
        {
            var frontend = await MeshAppHost.StartAsync(set.Replicas[0].BaseAddress, set.TrustBundlePath, "frontend", MeshTestBed.Token,
                Settings("frontend", orders.AsStaticEndpoint("orders")),
                configureServices: s => s.AddMeshClient("orders"), meshEndpoint: false, addOns: ConsulMeshApps.AddConsul);
            await Eventually.WaitAsync(() => Known(orders) == 3 && Known(frontend) == 3, TimeSpan.FromSeconds(5), "the workloads to learn the three replicas from Consul");
            return (orders, frontend);
        }
        catch
        {
            await orders.DisposeAsync();
            throw;
        }

        Dictionary<string, string?> Settings(string service, IEnumerable<KeyValuePair<string, string?>>? more = null) =>
            ConsulMeshApps.Settings(set.Consul, Instance(service), new Dictionary<string, string?>((more ?? []).Concat(new Dictionary<string, string?>
            {
                ["Mesh:ControlPlane:Address"] = string.Empty,
                ["Mesh:ControlPlane:ConsulService"] = ReplicaSet.ConsulService,
                ["Mesh:ControlPlane:WatchWait"] = "00:00:10",
            })));
    }

    /// <summary>How many replicas the workload's list from Consul holds.</summary>
    private static int Known(MeshAppHost workload) => workload.Services.GetRequiredService<IControlPlaneAddresses>().Current.Count;

    private static string Instance(string service) => $"{service}-chaos";
}
