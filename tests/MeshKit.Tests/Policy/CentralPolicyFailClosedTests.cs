using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using MeshKit.Policy;
using MeshKit.Testing;
using MeshKit.Testing.Consul;
using MeshKit.Tests.Identity;
using MeshKit.Tests.Traffic;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Tests.Policy;

/// <summary>
/// Central policy never fails open: a control service that cannot read its store says "unknown", a workload keeps the
/// central policy it holds until an explicit, newer deletion, and a workload does not start on its local policy alone.
/// </summary>
[Trait("Area", "Security")]
public sealed class CentralPolicyFailClosedTests(MeshTestBed bed) : IClassFixture<MeshTestBed>
{
    /// <summary>Central-only rules: only frontend may read orders; everyone else (inventory) is denied.</summary>
    private const string FrontendOnly = """
        { "Authorization": { "DefaultAction": "Deny", "Rules": [
            { "Name": "frontend-reads", "From": { "Services": [ "frontend" ] }, "To": { "Paths": [ "/api/*" ], "Methods": [ "GET" ] } } ] } }
        """;

    [Fact]
    public async Task A_replica_restarted_with_Consul_KV_down_keeps_central_deny_rules_in_force_and_KV_back_is_normal()
    {
        await using var consul = await ConsulDouble.StartAsync();
        await using var control = await StartControlPlaneAsync(consul);
        var version = await PutAsync(control, "orders", FrontendOnly);

        // orders has no authorization of its own: every rule comes from the control service.
        await using var orders = await MeshAppHost.StartAsync(control, "orders", MeshTestBed.Token, map: MapOrders);
        var policies = orders.Services.GetRequiredService<PolicyWatcher>();
        Assert.Equal(version, policies.CentralVersion);
        await using var frontend = await StartCallerAsync(control, orders, "frontend");
        await using var inventory = await StartCallerAsync(control, orders, "inventory");
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(frontend));
        Assert.Equal(HttpStatusCode.Forbidden, await StatusAsync(inventory));

        // Consul goes down, and the replica restarts: it cannot read the policy store, so it answers "unknown".
        await consul.StopAsync();
        await control.StopAsync();
        await control.StartAsync();
        await Eventually.WaitAsync(
            () => orders.Logs.Entries.Any(e => e.EventId.Id == 2106 && e.Message.Contains("'unknown'", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(15), "orders to hear 'unknown' from the restarted replica");
        using (var admin = control.CreateAdminClient())
        {
            using var get = await admin.GetAsync("v1/policy/orders", TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, get.StatusCode);
        }

        Assert.Equal(version, policies.CentralVersion);
        Assert.Equal(HttpStatusCode.Forbidden, await StatusAsync(inventory));
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(frontend));

        // KV back: the replica loads the same document; nothing changes for the workload.
        await consul.StartAsync();
        using (var admin = control.CreateAdminClient())
        {
            await Eventually.WaitAsync(async () =>
            {
                using var get = await admin.GetAsync("v1/policy/orders");
                return get.StatusCode == HttpStatusCode.OK;
            }, TimeSpan.FromSeconds(15), "the replica to load the policy from Consul");
        }

        Assert.Equal(version, policies.CentralVersion);
        Assert.Equal(HttpStatusCode.Forbidden, await StatusAsync(inventory));

        // Only an explicit deletion removes it: then orders runs on its local policy (no rules) and inventory gets in.
        using (var admin = control.CreateAdminClient())
        {
            using var deleted = await admin.DeleteAsync("v1/policy/orders", TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        }

        await Eventually.WaitAsync(() => policies.CentralVersion is null, TimeSpan.FromSeconds(10), "orders to drop the deleted central policy");
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(inventory));
        Assert.Contains(orders.Logs.Entries, e => e.EventId.Id == 2107);
    }

    [Fact]
    public async Task A_workload_does_not_start_on_its_local_policy_alone_while_the_control_service_cannot_say_what_its_central_policy_is()
    {
        await using var consul = await ConsulDouble.StartAsync();
        await using var control = await StartControlPlaneAsync(consul);
        var version = await PutAsync(control, "orders", FrontendOnly);
        await consul.StopAsync();
        await control.StopAsync();
        await control.StartAsync();

        var quick = new Dictionary<string, string?> { ["Mesh:ControlPlane:StartupTimeout"] = "00:00:02" };
        var refused = await Assert.ThrowsAsync<TimeoutException>(() => MeshAppHost.StartAsync(control, "orders", MeshTestBed.Token, settings: quick, map: MapOrders));
        Assert.Contains("Mesh:ControlPlane:StartWithoutCentralPolicy", refused.Message, StringComparison.Ordinal);
        Assert.Contains("central policy of orders", refused.Message, StringComparison.Ordinal);

        // Allowed by setting: it starts on the local policy, and takes the central one as soon as the store is back.
        quick["Mesh:ControlPlane:StartWithoutCentralPolicy"] = "true";
        await using var orders = await MeshAppHost.StartAsync(control, "orders", MeshTestBed.Token, settings: quick, map: MapOrders);
        var policies = orders.Services.GetRequiredService<PolicyWatcher>();
        Assert.Null(policies.CentralVersion);
        Assert.Contains(orders.Logs.Entries, e => e.EventId.Id == 2105);

        await consul.StartAsync();
        await Eventually.WaitAsync(() => policies.CentralVersion == version, TimeSpan.FromSeconds(15), "the central policy once Consul is back");
    }

    [Fact]
    public async Task A_policy_file_removed_by_hand_is_not_a_deletion_and_workloads_keep_the_policy_until_DELETE()
    {
        var service = "callee";
        var version = await PutAsync(bed.ControlPlane, service, FrontendOnly);
        await using var callee = await MeshAppHost.StartAsync(bed.ControlPlane, service, MeshTestBed.Token, map: MapOrders);
        var policies = callee.Services.GetRequiredService<PolicyWatcher>();
        Assert.Equal(version, policies.CentralVersion);

        // The file vanishes from the control service's policy folder: "absent", and the workload keeps its rules.
        File.Delete(Path.Combine(bed.ControlPlane.DataDirectory, "policy", service + ".json"));
        await Eventually.WaitAsync(
            () => callee.Logs.Entries.Any(e => e.EventId.Id == 2106 && e.Message.Contains("'absent'", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(10), "the workload to hear 'absent'");
        Assert.Equal(version, policies.CentralVersion);

        // DELETE of what is no longer stored answers 404 and deletes nothing; PUT then DELETE is a deletion.
        using var admin = bed.ControlPlane.CreateAdminClient();
        using (var missing = await admin.DeleteAsync($"v1/policy/{service}", TestContext.Current.CancellationToken))
        {
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }

        await PutAsync(bed.ControlPlane, service, FrontendOnly);
        using var deleted = await admin.DeleteAsync($"v1/policy/{service}", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        var revision = (await deleted.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("revision").GetUInt64();
        await Eventually.WaitAsync(() => policies.CentralVersion is null, TimeSpan.FromSeconds(10), "the workload to drop the deleted policy");
        Assert.Equal(revision, policies.CentralRevision);

        // A new PUT supersedes the deletion, with a higher revision.
        var again = await PutAsync(bed.ControlPlane, service, FrontendOnly.Replace("frontend-reads", "frontend-reads-again", StringComparison.Ordinal));
        await Eventually.WaitAsync(() => policies.CentralVersion == again, TimeSpan.FromSeconds(10), "the new document");
        Assert.True(policies.CentralRevision > revision, $"revision {policies.CentralRevision} should be above the deletion's {revision}");
    }

    private static void MapOrders(WebApplication app) => app.MapGet("/api/orders", () => "orders");

    private static async Task<ControlPlaneHost> StartControlPlaneAsync(ConsulDouble consul)
    {
        var settings = MeshTestBed.TokenSettings();

        // The older setting on purpose: the same replica setup as before central policy learned to say "unknown".
        settings["ControlPlane:Policy:Consul:Address"] = consul.Address.ToString();
        settings["ControlPlane:Policy:Consul:Wait"] = "00:00:01";
        return await ControlPlaneHost.StartAsync(settings);
    }

    private static Task<MeshAppHost> StartCallerAsync(ControlPlaneHost control, MeshAppHost orders, string service) =>
        MeshAppHost.StartAsync(control, service, MeshTestBed.Token, settings: new Dictionary<string, string?>(orders.AsStaticEndpoint("orders")), meshEndpoint: false,
            configureServices: s => s.AddMeshClient("orders"));

    private static async Task<HttpStatusCode> StatusAsync(MeshAppHost caller)
    {
        using var response = await caller.Client("orders").GetAsync("/api/orders", TestContext.Current.CancellationToken);
        return response.StatusCode;
    }

    private static async Task<string> PutAsync(ControlPlaneHost control, string service, string json)
    {
        using var admin = control.CreateAdminClient();
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        using var response = await admin.PutAsync($"v1/policy/{service}", content, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("version").GetString()!;
    }
}
