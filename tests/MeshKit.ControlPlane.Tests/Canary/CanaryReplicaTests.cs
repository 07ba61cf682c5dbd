using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using MeshKit.ControlPlane.Canary;
using MeshKit.ControlPlane.Coordination;
using MeshKit.ControlPlane.Workloads;
using MeshKit.Routing;
using MeshKit.Testing;
using MeshKit.Testing.Consul;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.ControlPlane.Tests.Canary;

/// <summary>
/// A canary with replicas on the Consul double: the callers report to a follower only, and the leader, which runs the
/// analysis, still sees their figures (each replica publishes the totals it received) and promotes the canary.
/// </summary>
[Trait("Area", "Canary")]
[Trait("Area", "ControlPlaneHA")]
public sealed class CanaryReplicaTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_leader_judges_a_canary_on_reports_that_reached_another_replica()
    {
        await using var consul = await ConsulDouble.StartAsync();
        await using var a = await StartReplicaAsync(consul);
        await using var b = await StartReplicaAsync(consul);
        await Eventually.WaitAsync(() => new[] { a, b }.Count(r => Leadership(r).IsLeader) == 1, TimeSpan.FromSeconds(10), "one leader");
        var leader = Leadership(a).IsLeader ? a : b;
        var follower = leader == a ? b : a;

        foreach (var version in new[] { "v1", "v2" })
        {
            var registry = follower.Services.GetRequiredService<WorkloadRegistry>();
            registry.Record(new WorkloadStatus
            {
                SpiffeId = $"spiffe://{ControlPlaneHost.TrustDomain}/ns/default/svc/orders",
                Instance = $"orders-{version}",
                ServiceVersion = version,
                CertificateSerial = "0A",
                NotAfter = registry.Now.AddHours(1),
                LastSeen = registry.Now,
            });
        }

        using var admin = leader.CreateAdminClient();
        const string Policy = """
            { "Policy": { "Destinations": { "orders": { "Routes": [ { "Name": "canary", "Canary": {
              "StableSubset": "v1", "CanarySubset": "v2", "Steps": [ 50 ], "Interval": "00:00:01", "MinRequests": 5, "FailedChecks": 1 } } ] } } } }
            """;
        using var put = await admin.PutAsync("v1/policy/frontend", new StringContent(Policy, Encoding.UTF8, "application/json"), Ct);
        Assert.True(put.IsSuccessStatusCode, await put.Content.ReadAsStringAsync(Ct));

        // frontend's workloads all talk to the follower.
        var reports = follower.Services.GetRequiredService<CanaryTrafficStore>();
        string? phase = null;
        await Eventually.WaitAsync(
            async () =>
            {
                reports.Add("frontend", new CanaryTrafficReport([Healthy("v1"), Healthy("v2")]));
                var list = await admin.GetFromJsonAsync<JsonElement>("v1/canaries", Ct);
                phase = list.GetProperty("canaries").EnumerateArray().Select(c => c.GetProperty("phase").GetString()).FirstOrDefault();
                return phase == "Promoted";
            },
            TimeSpan.FromSeconds(20),
            "the leader to promote the canary on the follower's reports",
            TimeSpan.FromMilliseconds(200));
    }

    private static CanaryRouteTraffic Healthy(string subset)
    {
        var latency = new long[LatencyHistogram.BucketCount];
        latency[LatencyHistogram.BucketOf(20)] = 10;
        return new CanaryRouteTraffic("orders", "canary", subset, 10, 0, latency);
    }

    private static ReplicaLeadership Leadership(ControlPlaneHost host) => host.Services.GetRequiredService<ReplicaLeadership>();

    private static Task<ControlPlaneHost> StartReplicaAsync(ConsulDouble consul) =>
        ControlPlaneHost.StartAsync(new Dictionary<string, string?>
        {
            ["ControlPlane:Consul:Address"] = consul.Address.ToString(),
            ["ControlPlane:Consul:Wait"] = "00:00:05",
        });
}
