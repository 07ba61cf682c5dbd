using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using MeshKit.Identity;
using MeshKit.Server;
using MeshKit.Testing;
using MeshKit.Transport;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Tests.Identity;

/// <summary>Rotation under load lives in the load collection: it must not share the two cores with other load.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class LoadCollection
{
    public const string Name = "Load";
}

[Trait("Area", "Identity")]
[Collection(LoadCollection.Name)]
public sealed class RotationTests(MeshTestBed bed) : IClassFixture<MeshTestBed>
{
    [Fact]
    public async Task Continuous_calls_across_two_rotations_all_succeed_and_no_request_is_served_on_an_expired_connection()
    {
        var callerSerials = new ConcurrentDictionary<string, byte>();
        var servedOnExpired = 0;
        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token, map: app =>
            app.MapGet("/serial", (HttpContext http) =>
            {
                var connection = http.Features.Get<MeshConnection>()!;
                var now = DateTimeOffset.UtcNow;
                if (now >= connection.NotAfter || now >= connection.ServerNotAfter)
                {
                    Interlocked.Increment(ref servedOnExpired);
                }

                callerSerials.TryAdd(connection.SpiffeId.Value + "/" + Convert.ToHexString(connection.Certificate.GetSerialNumber()), 0);
                return connection.ServerSerial;
            }));
        await using var frontend = await MeshAppHost.StartAsync(bed.ControlPlane, "frontend", MeshTestBed.Token, meshEndpoint: false,
            settings: new Dictionary<string, string?>(orders.AsStaticEndpoint("orders")),
            configureServices: s => s.AddMeshClient("orders"));

        var client = frontend.Services.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
        var serverSerials = new ConcurrentDictionary<string, byte>();
        var frontendIdentity = frontend.Services.GetRequiredService<WorkloadIdentitySource>();
        var ordersIdentity = orders.Services.GetRequiredService<WorkloadIdentitySource>();
        var firstClientSerial = frontendIdentity.Current!.SerialNumber;
        var firstServerSerial = ordersIdentity.Current!.SerialNumber;

        // 5 s certificates renewed at about half their life: 9 s covers at least two rotations on both sides (in a soak,
        // tests/soak/run.sh: 40 s certificates, so a rotation every 20 s, for 10 minutes).
        var duration = Chaos.ScenarioLoad.Soak ? TimeSpan.FromMinutes(10) : TimeSpan.FromSeconds(9);
        var stopwatch = Stopwatch.StartNew();
        await using var load = Chaos.ScenarioLoad.Start("certificate-rotation", async ct =>
        {
            var serial = await client.GetStringAsync("/serial", ct);
            serverSerials.TryAdd(serial, 0);
        });
        await Eventually.WaitAsync(() => stopwatch.Elapsed >= duration, duration + TimeSpan.FromSeconds(30), "the rotation window", TimeSpan.FromMilliseconds(200));
        var result = await load.StopAsync();

        Assert.True(result.Sent > 200, $"only {result.Sent} requests were sent");
        Assert.True(result.Failed == 0, result.ToString());
        Assert.Equal(0, servedOnExpired);

        // Both directions rotated at least twice: three or more certificates seen on each side.
        Assert.True(callerSerials.Count >= 3, $"the server saw {callerSerials.Count} client certificates");
        Assert.True(serverSerials.Count >= 3, $"the client saw {serverSerials.Count} server certificates");
        Assert.NotEqual(firstClientSerial, frontendIdentity.Current!.SerialNumber);
        Assert.NotEqual(firstServerSerial, ordersIdentity.Current!.SerialNumber);
        Assert.True(frontend.Metrics.Sum("mesh.identity.renewals", "mesh.outcome", "success") >= 2);
    }

    [Fact]
    public async Task A_trust_bundle_change_reaches_a_watching_workload_through_the_waiting_long_poll()
    {
        await using var controlPlane = await ControlPlaneHost.StartAsync(new Dictionary<string, string?>
        {
            ["ControlPlane:JoinTokens:t:Token"] = MeshTestBed.Token,
            ["ControlPlane:JoinTokens:t:Services:0"] = "orders",
            ["ControlPlane:CertificateLifetime"] = "00:10:00",
        });

        // A long wait: the change can only arrive quickly through the poll that is already waiting.
        await using var orders = await MeshAppHost.StartAsync(controlPlane, "orders", MeshTestBed.Token,
            settings: new Dictionary<string, string?> { ["Mesh:ControlPlane:WatchWait"] = "00:00:30" });
        var identity = orders.Services.GetRequiredService<WorkloadIdentitySource>();
        Assert.Single(identity.Current!.Bundle.Roots);

        // Let the first (immediate) poll return, so the next one is waiting.
        using var admin = controlPlane.CreateAdminClient();
        await Eventually.WaitAsync(async () =>
        {
            var list = await admin.GetFromJsonAsync<JsonElement>("v1/workloads");
            return list.GetProperty("workloads").EnumerateArray().Any(w => w.TryGetProperty("bundleVersion", out var v) && v.GetString() == identity.Current!.Bundle.Version);
        }, TimeSpan.FromSeconds(10), "the workload's first watch");

        var started = Stopwatch.StartNew();
        using var response = await admin.PostAsync("v1/ca/roots", null, TestContext.Current.CancellationToken);
        response.EnsureSuccessStatusCode();

        await Eventually.WaitAsync(() => identity.Current!.Bundle.Roots.Count == 2, TimeSpan.FromSeconds(10), "the new root to reach the workload");
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(10));

        // No polling loop: the first poll answered at once, the second waited and carried the change, a third now waits.
        Assert.InRange(controlPlane.Metrics.Sum("mesh.control_plane.watch.requests"), 2, 3);
        Assert.Contains(orders.Logs.Entries, e => e.EventId.Id == 2102);

        // And the workload reports the new bundle version on its next poll.
        await Eventually.WaitAsync(async () =>
        {
            var list = await admin.GetFromJsonAsync<JsonElement>("v1/workloads");
            return list.GetProperty("workloads").EnumerateArray().Any(w => w.TryGetProperty("bundleVersion", out var v) && v.GetString() == identity.Current!.Bundle.Version);
        }, TimeSpan.FromSeconds(10), "the workload to report the new bundle version");
    }

    [Fact]
    public async Task When_the_certificate_expires_without_renewal_mesh_calls_fail_closed_and_recover_when_the_control_service_returns()
    {
        await using var controlPlane = await ControlPlaneHost.StartAsync(new Dictionary<string, string?>
        {
            ["ControlPlane:JoinTokens:t:Token"] = MeshTestBed.Token,
            ["ControlPlane:JoinTokens:t:Services:0"] = "orders",
            ["ControlPlane:JoinTokens:t:Services:1"] = "frontend",
        });
        await using var orders = await MeshAppHost.StartAsync(controlPlane, "orders", MeshTestBed.Token, map: app => app.MapGet("/", () => "ok"));
        await using var frontend = await MeshAppHost.StartAsync(controlPlane, "frontend", MeshTestBed.Token, meshEndpoint: false,
            settings: new Dictionary<string, string?>(orders.AsStaticEndpoint("orders")),
            configureServices: s => s.AddMeshClient("orders"));
        var client = frontend.Services.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
        Assert.Equal("ok", await client.GetStringAsync("/", TestContext.Current.CancellationToken));

        await controlPlane.StopAsync();
        var identity = frontend.Services.GetRequiredService<WorkloadIdentitySource>();
        var notAfter = identity.Current!.NotAfter;
        await Eventually.WaitAsync(() => DateTimeOffset.UtcNow > notAfter.AddMilliseconds(200), TimeSpan.FromSeconds(10), "the certificate to expire", TimeSpan.FromMilliseconds(100));

        var error = await Assert.ThrowsAsync<MeshCallException>(() => client.GetStringAsync("/", TestContext.Current.CancellationToken));
        Assert.Equal("identity_unavailable", error.Reason);
        Assert.Contains("expired", error.Message, StringComparison.Ordinal);
        await Eventually.WaitAsync(() => frontend.Logs.Entries.Any(e => e.EventId.Id == 2004), TimeSpan.FromSeconds(5), "the expiry to be logged as an error");

        // Back: the join token gets new certificates and calls succeed again.
        await controlPlane.StartAsync();
        await Eventually.WaitAsync(async () =>
        {
            try
            {
                return await client.GetStringAsync("/", TestContext.Current.CancellationToken) == "ok";
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(15), "calls to succeed again", TimeSpan.FromMilliseconds(200));
    }
}
