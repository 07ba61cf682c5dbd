using System.Net.Http.Json;
using System.Text.Json;
using MeshKit.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Cli.Tests;

[Trait("Area", "Cli")]
public sealed class CaRotateTests
{
    [Fact]
    public async Task A_rotation_walks_every_step_with_live_workloads_and_calls_keep_working()
    {
        // Five-second certificates, so workloads renew from the new root within seconds.
        await using var bed = await CliBed.StartAsync(certificateLifetime: "00:00:05");
        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", CliBed.JoinToken, map: app => app.MapGet("/api/orders", () => "ok"));
        await using var frontend = await MeshAppHost.StartAsync(bed.ControlPlane, "frontend", CliBed.JoinToken,
            settings: new Dictionary<string, string?>(orders.AsStaticEndpoint("orders")),
            configureServices: services => services.AddMeshClient("orders"),
            meshEndpoint: false);
        await StatusTests.WaitForWorkloadAsync(bed, "frontend");
        await StatusTests.WaitForWorkloadAsync(bed, "orders");

        // One step first, then a rerun of it: the second finds it done and adds nothing.
        var first = await bed.RunAsync("ca", "rotate", "--step", "add-root", "--yes", "--json");
        var rerun = await bed.RunAsync("ca", "rotate", "--step", "add-root", "--yes", "--json");
        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.Equal("done", first.Json.GetProperty("steps")[0].GetProperty("status").GetString());
        Assert.Equal("already-done", rerun.Json.GetProperty("steps")[0].GetProperty("status").GetString());
        Assert.Equal(2, rerun.Json.GetProperty("roots").GetProperty("roots").GetArrayLength());

        // The whole procedure continues from there.
        var rotation = await bed.RunAsync("ca", "rotate", "--yes", "--json", "--poll-interval", "200ms", "--timeout", "12s");

        Assert.True(rotation.ExitCode == 0, rotation.ToString());
        var steps = rotation.Json.GetProperty("steps").EnumerateArray().Select(s => (s.GetProperty("step").GetString(), s.GetProperty("status").GetString())).ToList();
        Assert.Equal([("add-root", "already-done"), ("wait-bundle", "waited"), ("activate", "done"), ("wait-renewal", "waited"), ("remove-old", "done")], steps);
        var root = Assert.Single(rotation.Json.GetProperty("roots").GetProperty("roots").EnumerateArray());
        Assert.True(root.GetProperty("active").GetBoolean());
        Assert.Equal("root-2", root.GetProperty("id").GetString());
        Assert.Contains("waiting for workloads to renew", rotation.Error, StringComparison.Ordinal);

        var client = frontend.Services.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
        Assert.Equal("ok", await client.GetStringAsync("/api/orders", TestContext.Current.CancellationToken));
        await Eventually.WaitAsync(
            async () => (await bed.RunAsync("status", "--json", "--near-expiry", "0s")).ExitCode == 0,
            TimeSpan.FromSeconds(10),
            "every workload on the final bundle",
            TimeSpan.FromMilliseconds(200));
    }

    [Fact]
    public async Task Without_yes_a_rotation_asks_and_changes_nothing_when_declined_or_when_nobody_can_answer()
    {
        await using var bed = await CliBed.StartAsync();

        var declined = await Cli.RunAsync(bed.Variables, "n\n", ["ca", "rotate", .. bed.Connection]);
        var unattended = await bed.RunAsync("ca", "rotate");
        var roots = await bed.RunAsync("ca", "roots", "--json");

        Assert.Equal(7, declined.ExitCode);
        Assert.Contains("Add a new root", declined.Error, StringComparison.Ordinal);
        Assert.Equal(2, unattended.ExitCode);
        Assert.Contains("--yes", unattended.Error, StringComparison.Ordinal);
        Assert.Equal(1, roots.Json.GetProperty("roots").GetArrayLength());
    }

    [Fact]
    public async Task Removing_the_old_root_is_refused_while_a_workload_still_holds_a_certificate_from_it()
    {
        await using var bed = await CliBed.StartAsync();
        await using var frontend = await StatusTests.StartWorkloadAsync(bed, "frontend", "v1");
        await StatusTests.WaitForWorkloadAsync(bed, "frontend");
        Assert.Equal(0, (await bed.RunAsync("ca", "rotate", "--step", "add-root", "--yes")).ExitCode);
        using var admin = bed.ControlPlane.CreateAdminClient();
        Assert.True((await admin.PostAsync("v1/ca/roots/root-2/activate", null, TestContext.Current.CancellationToken)).IsSuccessStatusCode);

        // One-hour certificates: the workload will not renew from root-2 for half an hour.
        var remove = await bed.RunAsync("ca", "rotate", "--step", "remove-old", "--yes");

        Assert.Equal(5, remove.ExitCode);
        Assert.Contains("still hold certificates from another root", remove.Error, StringComparison.Ordinal);
        var roots = await admin.GetFromJsonAsync<JsonElement>("v1/ca/roots", TestContext.Current.CancellationToken);
        Assert.Equal(2, roots.GetProperty("roots").GetArrayLength());
    }
}
