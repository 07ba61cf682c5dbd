using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using MeshKit.Balancing;
using MeshKit.Testing;
using MeshKit.Tests.Identity;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Tests.ControlChannel;

[Trait("Area", "Observability")]
public sealed class WorkloadStatusTests
{
    [Fact]
    public async Task A_second_ejection_within_a_second_of_the_first_reaches_the_control_service_without_waiting_for_the_next_poll()
    {
        // A 30 s poll and 60 s certificates: without a prompt report, the second ejection would only show with the next
        // poll or the next renewal, both far beyond the few seconds allowed below.
        var settings = MeshTestBed.TokenSettings();
        settings["ControlPlane:CertificateLifetime"] = "00:01:00";
        await using var control = await ControlPlaneHost.StartAsync(settings);
        await using var frontend = await MeshAppHost.StartAsync(control, "frontend", MeshTestBed.Token, meshEndpoint: false,
            settings: new Dictionary<string, string?> { ["Mesh:ControlPlane:WatchWait"] = "00:00:30" });
        var instance = frontend.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<MeshKit.MeshOptions>>().Value.Service.InstanceId;
        using var admin = control.CreateAdminClient();
        await Eventually.WaitAsync(async () => await EjectedAsync(admin, instance!) is not null, TimeSpan.FromSeconds(10), "the first poll");

        var states = frontend.Services.GetRequiredService<EndpointStateRegistry>();
        var until = Stopwatch.GetTimestamp() + (60 * Stopwatch.Frequency);
        states.Get("orders", "10.0.0.1:443").Eject(until, 1);
        states.NotifyEjected();
        await Eventually.WaitAsync(
            async () => (await EjectedAsync(admin, instance!))?.Contains("10.0.0.1:443", StringComparison.Ordinal) == true,
            TimeSpan.FromSeconds(5), "the first ejection in /v1/workloads");

        // Within a second of the first report: the second must still go out promptly, not with the poll 30 s later.
        states.Get("orders", "10.0.0.2:443").Eject(until, 1);
        states.NotifyEjected();

        await Eventually.WaitAsync(
            async () => (await EjectedAsync(admin, instance!)) is { } e && e.Contains("10.0.0.1:443", StringComparison.Ordinal) && e.Contains("10.0.0.2:443", StringComparison.Ordinal),
            TimeSpan.FromSeconds(4), "both ejections in /v1/workloads");
    }

    /// <summary>The instance's reported ejections ("" when none), or null before its first poll.</summary>
    private static async Task<string?> EjectedAsync(HttpClient admin, string instance)
    {
        var list = await admin.GetFromJsonAsync<JsonElement>("v1/workloads");
        foreach (var workload in list.GetProperty("workloads").EnumerateArray())
        {
            if (workload.GetProperty("instance").GetString() == instance)
            {
                return workload.TryGetProperty("ejectedEndpoints", out var e) && e.ValueKind == JsonValueKind.String ? e.GetString() : string.Empty;
            }
        }

        return null;
    }
}
