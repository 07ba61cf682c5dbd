using System.Net;
using MeshKit.Policy;
using MeshKit.Testing;
using MeshKit.Tests.Authorization;
using MeshKit.Tests.Identity;
using MeshKit.Tests.Traffic;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Tests.Policy;

[Trait("Area", "Policy")]
public sealed class HotReloadTests(MeshTestBed bed) : IClassFixture<MeshTestBed>, IDisposable
{
    private readonly TempDirectory _folder = new("reload");

    private string File => Path.Combine(_folder.Path, "appsettings.json");

    private static string Split(int v1, int v2) => $$"""
        { "Mesh": { "Policy": { "Destinations": { "orders": { "Routes": [ { "Name": "canary", "Split": { "v1": {{v1}}, "v2": {{v2}} } } ] } } } } }
        """;

    private const string DenyRules = """
        { "Mesh": { "Authorization": { "DefaultAction": "Deny", "Rules": [
          { "Name": "frontend-reads-orders", "From": { "Services": [ "frontend" ] }, "To": { "Paths": [ "/api/*" ] } } ] } } }
        """;

    [Fact]
    public async Task A_weight_change_in_appsettings_takes_effect_without_a_restart()
    {
        await WriteAsync(Split(100, 0));
        await using var v1 = await Upstream.StartAsync(bed, "orders", "v1");
        await using var v2 = await Upstream.StartAsync(bed, "orders", "v2");
        await using var caller = await StartCallerAsync([v1, v2]);
        var client = caller.Client("orders");
        var watcher = caller.Services.GetRequiredService<PolicyWatcher>();
        var before = watcher.Current.Version;

        await Caller.LoadAsync(client, 50, 2);
        Assert.Equal(0, v2.Served);

        await WriteAsync(Split(0, 100));
        await Eventually.WaitAsync(() => watcher.Current.Version != before, TimeSpan.FromSeconds(10), "the new weights to load");
        var servedBefore = v2.Served;
        await Caller.LoadAsync(client, 50, 2);
        Assert.Equal(servedBefore + 50, v2.Served);
        Assert.Contains(caller.Logs.Entries, e => e.EventId.Id == 6002);
    }

    [Fact]
    public async Task An_invalid_value_is_rejected_with_its_path_and_the_old_policy_stays()
    {
        await WriteAsync(Split(100, 0));
        await using var v1 = await Upstream.StartAsync(bed, "orders", "v1");
        await using var v2 = await Upstream.StartAsync(bed, "orders", "v2");
        await using var caller = await StartCallerAsync([v1, v2]);
        var watcher = caller.Services.GetRequiredService<PolicyWatcher>();
        var version = watcher.Current.Version;

        await WriteAsync(Split(100, 0).Replace("\"v2\": 0", "\"v2\": \"ten\"", StringComparison.Ordinal));
        await Eventually.WaitAsync(() => caller.Metrics.Sum("mesh.policy.reloads", "mesh.outcome", "rejected") >= 1, TimeSpan.FromSeconds(10), "the reload to be rejected");

        Assert.Equal(version, watcher.Current.Version);
        Assert.Contains(watcher.LastRejection, e => e.Path == "Mesh:Policy:Destinations:orders:Routes:0:Split:v2");
        Assert.Contains(caller.Logs.Entries, e => e.EventId.Id == 6003 && e.Message.Contains("Mesh:Policy:Destinations:orders:Routes:0:Split:v2", StringComparison.Ordinal));
        await Caller.LoadAsync(caller.Client("orders"), 50, 2);
        Assert.Equal(0, v2.Served);
    }

    [Fact]
    public async Task Truncated_JSON_is_rejected_and_the_authorization_rules_stay_in_force()
    {
        await WriteAsync(DenyRules);
        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token, map: AuthorizationTests.MapOrders, jsonFile: File);
        await using var inventory = await StartOrdersCallerAsync(orders, "inventory");
        var watcher = orders.Services.GetRequiredService<PolicyWatcher>();
        var version = watcher.Current.Version;
        Assert.Equal(HttpStatusCode.Forbidden, await StatusAsync(inventory));

        // A half-written file: it fails to parse, its keys vanish, and that must not become "no rules".
        await System.IO.File.WriteAllTextAsync(File, DenyRules[..(DenyRules.Length / 2)], TestContext.Current.CancellationToken);
        await Eventually.WaitAsync(() => orders.Metrics.Sum("mesh.policy.reloads", "mesh.outcome", "rejected") >= 1, TimeSpan.FromSeconds(10), "the truncated file to be rejected");

        Assert.Equal(version, watcher.Current.Version);
        Assert.True(watcher.Current.Authorization.Enabled);
        Assert.Equal(HttpStatusCode.Forbidden, await StatusAsync(inventory));
        Assert.Contains(watcher.LastRejection, e => e.Message.Contains("failed to load", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_file_deleted_and_recreated_with_the_same_content_leaves_the_deny_rules_in_force_throughout()
    {
        await WriteAsync(DenyRules);
        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token, map: AuthorizationTests.MapOrders, jsonFile: File);
        await using var inventory = await StartOrdersCallerAsync(orders, "inventory");
        Assert.Equal(HttpStatusCode.Forbidden, await StatusAsync(inventory));

        // Keep calling as inventory the whole time the file is gone and back.
        using var stop = new CancellationTokenSource();
        var allowed = 0;
        var calls = 0;
        var prober = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                Interlocked.Increment(ref calls);
                if (await StatusAsync(inventory) != HttpStatusCode.Forbidden)
                {
                    Interlocked.Increment(ref allowed);
                }
            }
        }, TestContext.Current.CancellationToken);

        System.IO.File.Delete(File);
        await Eventually.WaitAsync(() => orders.Metrics.Sum("mesh.policy.reloads", "mesh.outcome", "rejected") >= 1, TimeSpan.FromSeconds(10), "the deletion to be rejected");
        await WriteAsync(DenyRules);
        var callsAtRecreate = Volatile.Read(ref calls);
        await Eventually.WaitAsync(() => Volatile.Read(ref calls) > callsAtRecreate + 20, TimeSpan.FromSeconds(10), "more calls after the file is back");
        await stop.CancelAsync();
        await prober;

        Assert.True(calls > 20);
        Assert.Equal(0, allowed);
        Assert.Contains(orders.Logs.Entries, e => e.EventId.Id == 6003 && e.Message.Contains("vanished", StringComparison.Ordinal));
    }

    public void Dispose() => _folder.Dispose();

    private async Task WriteAsync(string json)
    {
        // Write then move, as editors and deploy tools do, so the watcher sees whole files.
        var temporary = File + ".tmp";
        await System.IO.File.WriteAllTextAsync(temporary, json, TestContext.Current.CancellationToken);
        System.IO.File.Move(temporary, File, overwrite: true);
    }

    private Task<MeshAppHost> StartCallerAsync(IEnumerable<Upstream> upstreams)
    {
        var settings = new Dictionary<string, string?>();
        var i = 0;
        foreach (var upstream in upstreams)
        {
            foreach (var (k, v) in upstream.Host.AsStaticEndpoint("orders", i++, upstream.Version))
            {
                settings[k] = v;
            }
        }

        return MeshAppHost.StartAsync(bed.ControlPlane, "frontend", MeshTestBed.Token, settings: settings, meshEndpoint: false,
            configureServices: s => s.AddMeshClient("orders"), jsonFile: File);
    }

    private Task<MeshAppHost> StartOrdersCallerAsync(MeshAppHost orders, string service) =>
        MeshAppHost.StartAsync(bed.ControlPlane, service, MeshTestBed.Token, settings: new Dictionary<string, string?>(orders.AsStaticEndpoint("orders")),
            meshEndpoint: false, configureServices: s => s.AddMeshClient("orders"));

    private static async Task<HttpStatusCode> StatusAsync(MeshAppHost caller)
    {
        using var response = await caller.Client("orders").GetAsync("/api/orders", TestContext.Current.CancellationToken);
        return response.StatusCode;
    }
}
