using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using MeshKit.Identity;
using MeshKit.Testing;
using MeshKit.Tests.Chaos;
using MeshKit.Tests.Identity;
using MeshKit.Tests.Traffic;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Tests.ControlChannel;

/// <summary>
/// Chaos with three control-service replicas sharing the Consul double (5 s certificates): Consul down for 10 s under load
/// fails no mesh request, renewals go on at the replicas with what they hold, and nothing fails open: a join token revoked
/// before the outage stays refused by every replica while Consul is gone.
/// </summary>
[Trait("Area", "ControlPlaneHA")]
[Trait("Area", "Chaos")]
[Collection(LoadCollection.Name)]
public sealed class ReplicaChaosTests
{
    private static readonly TimeSpan Outage = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Consul_down_for_ten_seconds_under_three_replicas_fails_no_request_and_a_revoked_token_stays_refused()
    {
        await using var set = await ReplicaSet.StartAsync();
        var instance = new Dictionary<string, string?> { ["Mesh:ControlPlane:WatchWait"] = "00:00:10" };
        await using var orders = await MeshAppHost.StartAsync(set.Replicas[0], "orders", MeshTestBed.Token, set.AddressSettings(instance), map: app => app.MapGet("/api/orders", () => "orders"));
        await using var frontend = await MeshAppHost.StartAsync(set.Replicas[0], "frontend", MeshTestBed.Token, set.AddressSettings(instance.Concat(orders.AsStaticEndpoint("orders"))),
            configureServices: s => s.AddMeshClient("orders"), meshEndpoint: false);
        var client = frontend.Client("orders");
        await using var load = ScenarioLoad.Start("replicas-consul-outage", async ct => (await client.GetAsync("/api/orders", ct)).EnsureSuccessStatusCode());
        await load.CallsAsync(50);

        // The join token the workloads joined with is revoked (they renew with their certificates); every replica learns it.
        using (var admin = set.Replicas[1].CreateAdminClient())
        {
            using var revoke = await admin.PostAsync("v1/tokens/tests/revoke", null, TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        }

        foreach (var replica in set.Replicas)
        {
            await Eventually.WaitAsync(async () => (await SignWithTokenAsync(replica)).Reason == "token-revoked", TimeSpan.FromSeconds(5), "every replica to refuse the revoked token");
        }

        var serials = (Frontend: Serial(frontend), Orders: Serial(orders));
        await set.Consul.StopAsync();
        await load.ForAsync(Outage);
        Assert.Equal(0, load.Failed);

        // Renewals went on (the 5 s certificates turned over at least once) and the revoked token is still refused everywhere.
        Assert.NotEqual(serials.Frontend, Serial(frontend));
        Assert.NotEqual(serials.Orders, Serial(orders));
        foreach (var replica in set.Replicas)
        {
            var (status, reason) = await SignWithTokenAsync(replica);
            Assert.True(status == HttpStatusCode.Unauthorized && reason == "token-revoked", $"{replica.BaseAddress}: {(int)status} {reason} while Consul is down");
        }

        await set.Consul.StartAsync();
        var result = await load.StopAsync();
        Assert.True(result.Failed == 0, result.ToString());
    }

    private static string Serial(MeshAppHost workload) => workload.Services.GetRequiredService<WorkloadIdentitySource>().Current!.SerialNumber;

    private static async Task<(HttpStatusCode Status, string? Reason)> SignWithTokenAsync(ControlPlaneHost replica)
    {
        using var client = replica.CreateClient(bearer: MeshTestBed.Token);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var csr = CertificateSigningRequests.Create(key, SpiffeId.Create(ControlPlaneHost.TrustDomain, "default", "inventory"));
        using var response = await client.PostAsJsonAsync("v1/identity/sign", new { csr }, TestContext.Current.CancellationToken);
        if (response.IsSuccessStatusCode)
        {
            return (response.StatusCode, null);
        }

        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        return (response.StatusCode, problem.TryGetProperty("reason", out var reason) ? reason.GetString() : null);
    }
}
