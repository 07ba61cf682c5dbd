using System.Net.Http.Json;
using System.Text.Json;
using MeshKit.ControlPlane.Coordination;
using MeshKit.ControlPlane.Workloads;
using MeshKit.Testing;
using MeshKit.Testing.Consul;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.ControlPlane.Tests.Coordination;

/// <summary>
/// The workload registry across replicas sharing the Consul double: a workload that talks to one replica is listed by
/// every replica's <c>GET /v1/workloads</c> within about a second, named with the replica it talks to; an instance that
/// moves to another replica is listed once, as the replica that heard from it last.
/// </summary>
[Trait("Area", "ControlPlaneHA")]
public sealed class SharedWorkloadsTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_workload_of_one_replica_is_listed_by_every_replica_with_the_replica_it_talks_to()
    {
        await using var consul = await ConsulDouble.StartAsync();
        await using var a = await StartReplicaAsync(consul);
        await using var b = await StartReplicaAsync(consul);
        await using var c = await StartReplicaAsync(consul);

        Record(a, "orders", "orders-1");
        Record(b, "frontend", "frontend-1");

        foreach (var replica in new[] { a, b, c })
        {
            await Eventually.WaitAsync(
                async () => (await ListAsync(replica)).Count == 2,
                Deadline,
                "every replica to list both workloads");
            var listed = await ListAsync(replica);
            Assert.Equal(ReplicaId(a), listed.Single(w => w.Instance == "orders-1").Replica);
            Assert.Equal(ReplicaId(b), listed.Single(w => w.Instance == "frontend-1").Replica);
        }
    }

    [Fact]
    public async Task An_instance_that_moved_to_another_replica_is_listed_once_as_the_replica_that_heard_from_it_last()
    {
        await using var consul = await ConsulDouble.StartAsync();
        await using var a = await StartReplicaAsync(consul);
        await using var b = await StartReplicaAsync(consul);

        Record(a, "orders", "orders-1", policyVersion: "p1");
        await Eventually.WaitAsync(async () => (await ListAsync(b)).Count == 1, Deadline, "b to list the workload of a");
        Record(b, "orders", "orders-1", policyVersion: "p2", later: TimeSpan.FromSeconds(1));

        await Eventually.WaitAsync(
            async () => (await ListAsync(a)) is [{ PolicyVersion: "p2" } only] && only.Replica == ReplicaId(b),
            Deadline,
            "a to list the instance once, as b heard from it");
        var onB = Assert.Single(await ListAsync(b));
        Assert.Equal("p2", onB.PolicyVersion);
    }

    [Fact]
    public async Task A_replica_with_more_workloads_than_one_Consul_value_holds_is_listed_whole_by_the_others()
    {
        // 3,000 workloads publish as well over Consul's 512 KiB value limit (the double enforces it as the agent does).
        await using var consul = await ConsulDouble.StartAsync();
        await using var a = await StartReplicaAsync(consul);
        await using var b = await StartReplicaAsync(consul);
        for (var i = 0; i < 3000; i++)
        {
            Record(a, $"service-{i % 50}", $"instance-{i:D4}");
        }

        await Eventually.WaitAsync(async () => (await ListAsync(b)).Count == 3000, Deadline, "b to list all 3,000 of a's workloads");
        Assert.DoesNotContain(a.Logs.Entries, e => e.EventId.Id == 1601);
    }

    [Fact]
    public void A_poll_that_only_moves_last_seen_does_not_change_the_registry_version_so_replicas_do_not_republish_for_it()
    {
        var registry = new WorkloadRegistry(TimeProvider.System);
        var now = registry.Now;
        var status = new WorkloadStatus
        {
            SpiffeId = $"spiffe://{ControlPlaneHost.TrustDomain}/ns/default/svc/orders",
            Instance = "orders-1",
            CertificateSerial = "0A",
            NotAfter = now.AddHours(1),
            PolicyVersion = "p1",
            LastSeen = now,
        };
        registry.Record(status);
        var version = registry.Version;

        registry.Record(status with { LastSeen = now.AddSeconds(1) });
        Assert.Equal(version, registry.Version);
        Assert.Equal(now.AddSeconds(1), registry.Find(status.SpiffeId, "orders-1")!.LastSeen); // kept here all the same

        registry.Record(status with { PolicyVersion = "p2", LastSeen = now.AddSeconds(2) });
        Assert.NotEqual(version, registry.Version);
        version = registry.Version;
        registry.Record(status with { Instance = "orders-2" });
        Assert.NotEqual(version, registry.Version);
    }

    private static void Record(ControlPlaneHost replica, string service, string instance, string policyVersion = "p1", TimeSpan later = default)
    {
        var registry = replica.Services.GetRequiredService<WorkloadRegistry>();
        registry.Record(new WorkloadStatus
        {
            SpiffeId = $"spiffe://{ControlPlaneHost.TrustDomain}/ns/default/svc/{service}",
            Instance = instance,
            CertificateSerial = "0A",
            NotAfter = registry.Now.AddHours(1),
            PolicyVersion = policyVersion,
            LastSeen = registry.Now + later,
        });
    }

    private static async Task<List<WorkloadStatus>> ListAsync(ControlPlaneHost replica)
    {
        using var admin = replica.CreateAdminClient();
        var answer = await admin.GetFromJsonAsync<JsonElement>("v1/workloads", Ct);
        return answer.GetProperty("workloads").Deserialize<List<WorkloadStatus>>(new JsonSerializerOptions(JsonSerializerDefaults.Web))!;
    }

    private static string ReplicaId(ControlPlaneHost host) => host.Services.GetRequiredService<ReplicaLeadership>().ReplicaId;

    private static Task<ControlPlaneHost> StartReplicaAsync(ConsulDouble consul) =>
        ControlPlaneHost.StartAsync(new Dictionary<string, string?>
        {
            ["ControlPlane:Consul:Address"] = consul.Address.ToString(),
            ["ControlPlane:Consul:Wait"] = "00:00:05",
        });
}
