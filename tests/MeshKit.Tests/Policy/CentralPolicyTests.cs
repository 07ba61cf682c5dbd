using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using MeshKit.Policy;
using MeshKit.Testing;
using MeshKit.Testing.Consul;
using MeshKit.Tests.Identity;
using MeshKit.Tests.Traffic;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Tests.Policy;

[Trait("Area", "Policy")]
public sealed class CentralPolicyTests(MeshTestBed bed) : IClassFixture<MeshTestBed>
{
    private const string AllToV2 = """
        { "Policy": { "Destinations": { "orders": { "Routes": [ { "Name": "central-canary", "Split": { "v2": 100 } } ] } } } }
        """;

    [Fact]
    public async Task A_PUT_reaches_a_watching_workload_through_its_waiting_long_poll_and_the_applied_version_shows_in_workloads()
    {
        await using var v1 = await Upstream.StartAsync(bed, "orders", "v1");
        await using var v2 = await Upstream.StartAsync(bed, "orders", "v2");
        var settings = new Dictionary<string, string?>
        {
            // A long wait: a change can only arrive quickly on the poll that is already waiting.
            ["Mesh:ControlPlane:WatchWait"] = "00:00:30",
            ["Mesh:Policy:Destinations:orders:Routes:0:Split:v1"] = "100",
        };
        await using var frontend = await Caller.StartAsync(bed, "orders", [v1, v2], settings);
        var policies = frontend.Services.GetRequiredService<PolicyWatcher>();
        var localVersion = policies.Current.Version;
        await Caller.LoadAsync(frontend.Client("orders"), 20, 2);
        Assert.Equal(0, v2.Served);

        // Wait until the workload's first poll has come and gone, so the next one is waiting.
        using var admin = bed.ControlPlane.CreateAdminClient();
        await Eventually.WaitAsync(async () => (await FindWorkloadAsync(admin, "frontend", frontend)) is not null, TimeSpan.FromSeconds(10), "the first watch");

        var put = await PutAsync(admin, "frontend", AllToV2);
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        var centralVersion = (await put.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("version").GetString();

        await Eventually.WaitAsync(() => policies.CentralVersion == centralVersion, TimeSpan.FromSeconds(10), "the central policy to arrive");
        Assert.True(localVersion != policies.Current.Version, $"the merged policy did not change; rejection: {string.Join("; ", policies.LastRejection)}");
        await Caller.LoadAsync(frontend.Client("orders"), 20, 2);
        Assert.Equal(20, v2.Served);

        // The workload reports both what it received and what it applied (the merged policy).
        await Eventually.WaitAsync(async () =>
        {
            var entry = await FindWorkloadAsync(admin, "frontend", frontend);
            return entry is { } e
                && e.GetProperty("centralPolicyVersion").GetString() == centralVersion
                && e.GetProperty("policyVersion").GetString() == policies.Current.Version;
        }, TimeSpan.FromSeconds(40), "the applied version in /v1/workloads");
    }

    [Fact]
    public async Task An_invalid_PUT_answers_400_with_every_error_and_stores_nothing()
    {
        using var admin = bed.ControlPlane.CreateAdminClient();
        var response = await PutAsync(admin, "inventory", """
            { "Policy": { "Destinations": { "orders": { "Timeout": "soon", "Routes": [ { "Split": { "v1": "ten" } } ] } } },
              "Authorization": { "Rules": [ { "Action": "Maybe" } ] }, "Extra": 1 }
            """);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal("policy-invalid", problem.GetProperty("reason").GetString());
        var paths = problem.GetProperty("errors").EnumerateArray().Select(e => e.GetProperty("path").GetString()).ToList();
        Assert.Contains("Policy:Destinations:orders:Timeout", paths);
        Assert.Contains("Policy:Destinations:orders:Routes:0:Split:v1", paths);
        Assert.Contains("Authorization:Rules:0:Action", paths);
        Assert.Contains("Extra", paths);

        using var get = await admin.GetAsync("v1/policy/inventory", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
    }

    [Fact]
    public async Task A_document_wrapped_in_Mesh_like_appsettings_is_refused_because_workloads_would_ignore_it()
    {
        using var admin = bed.ControlPlane.CreateAdminClient();
        var response = await PutAsync(admin, "wrapped", """
            { "Mesh": { "Policy": { "Destinations": { "orders": { "Timeout": "00:00:02" } } } } }
            """);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        var paths = problem.GetProperty("errors").EnumerateArray().Select(e => e.GetProperty("path").GetString()).ToList();
        Assert.Equal("Mesh", Assert.Single(paths));

        using var get = await admin.GetAsync("v1/policy/wrapped", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
    }

    [Fact]
    public async Task A_dry_run_diff_lists_the_changes_without_storing_them()
    {
        using var admin = bed.ControlPlane.CreateAdminClient();
        Assert.Equal(HttpStatusCode.OK, (await PutAsync(admin, "caller", AllToV2)).StatusCode);

        using var content = new StringContent(AllToV2.Replace("\"v2\": 100", "\"v1\": 50, \"v2\": 50", StringComparison.Ordinal), Encoding.UTF8, "application/json");
        using var diff = await admin.PostAsync("v1/policy/caller/diff", content, TestContext.Current.CancellationToken);
        var body = await diff.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        var changes = body.GetProperty("changes").EnumerateArray().Select(c => (c.GetProperty("op").GetString(), c.GetProperty("path").GetString())).ToList();
        Assert.Contains(("add", "Policy:Destinations:orders:Routes:0:Split:v1"), changes);
        Assert.Contains(("change", "Policy:Destinations:orders:Routes:0:Split:v2"), changes);

        var stored = await admin.GetStringAsync("v1/policy/caller", TestContext.Current.CancellationToken);
        Assert.DoesNotContain("\"v1\"", stored, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_control_service_replicas_over_Consul_share_policy_a_write_to_one_is_served_by_the_other()
    {
        await using var consul = await ConsulDouble.StartAsync();
        var settings = new Dictionary<string, string?>
        {
            ["ControlPlane:Policy:Consul:Address"] = consul.Address.ToString(),
            ["ControlPlane:Policy:Consul:Wait"] = "00:00:01",
        };
        await using var first = await ControlPlaneHost.StartAsync(settings);
        await using var second = await ControlPlaneHost.StartAsync(settings);

        using var firstAdmin = first.CreateAdminClient();
        var put = await PutAsync(firstAdmin, "orders", AllToV2);
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        var version = put.Headers.ETag!.Tag.Trim('"');

        using var secondAdmin = second.CreateAdminClient();
        await Eventually.WaitAsync(async () =>
        {
            using var response = await secondAdmin.GetAsync("v1/policy/orders");
            return response.StatusCode == HttpStatusCode.OK && response.Headers.ETag?.Tag.Trim('"') == version;
        }, TimeSpan.FromSeconds(10), "the second replica to serve the write");

        // Writes use CAS: a writer holding an old version is refused rather than overwriting.
        using var stale = new HttpRequestMessage(HttpMethod.Put, "v1/policy/orders") { Content = new StringContent(AllToV2.Replace("v2", "v3", StringComparison.Ordinal), Encoding.UTF8, "application/json") };
        stale.Headers.IfMatch.Add(new System.Net.Http.Headers.EntityTagHeaderValue("\"000000000000\""));
        using var conflict = await secondAdmin.SendAsync(stale, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Conflict, conflict.StatusCode);
    }

    private static async Task<HttpResponseMessage> PutAsync(HttpClient admin, string service, string json)
    {
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        return await admin.PutAsync($"v1/policy/{service}", content, TestContext.Current.CancellationToken);
    }

    private static async Task<JsonElement?> FindWorkloadAsync(HttpClient admin, string service, MeshAppHost host)
    {
        var instance = host.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<MeshKit.MeshOptions>>().Value.Service.InstanceId;
        var list = await admin.GetFromJsonAsync<JsonElement>("v1/workloads");
        foreach (var workload in list.GetProperty("workloads").EnumerateArray())
        {
            if (workload.GetProperty("spiffeId").GetString()!.EndsWith($"/svc/{service}", StringComparison.Ordinal)
                && workload.GetProperty("instance").GetString() == instance
                && workload.TryGetProperty("bundleVersion", out var bundle) && bundle.ValueKind == JsonValueKind.String)
            {
                return workload;
            }
        }

        return null;
    }
}
