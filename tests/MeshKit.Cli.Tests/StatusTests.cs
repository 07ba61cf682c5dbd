using System.Diagnostics;
using System.Net.Http.Json;
using System.Reflection;
using System.Text;
using System.Text.Json;
using MeshKit.Cli.ControlPlane;
using MeshKit.Cli.Status;
using MeshKit.Testing;

namespace MeshKit.Cli.Tests;

[Trait("Area", "Cli")]
public sealed class StatusTests
{
    [Fact]
    public async Task Status_lists_a_running_workload_with_its_identity_version_certificate_bundle_and_policy()
    {
        await using var bed = await CliBed.StartAsync();
        await using var frontend = await StartWorkloadAsync(bed, "frontend", "v3");

        var result = await WaitForWorkloadAsync(bed, "frontend");

        Assert.True(result.ExitCode == 0, result.ToString());
        var json = result.Json;
        Assert.Equal(ControlPlaneHost.TrustDomain, json.GetProperty("trustDomain").GetString());
        var workload = Assert.Single(json.GetProperty("workloads").EnumerateArray());
        Assert.Equal($"spiffe://{ControlPlaneHost.TrustDomain}/ns/default/svc/frontend", workload.GetProperty("spiffeId").GetString());
        Assert.Equal("v3", workload.GetProperty("serviceVersion").GetString());
        Assert.Equal(json.GetProperty("bundleVersion").GetString(), workload.GetProperty("bundleVersion").GetString());
        Assert.False(string.IsNullOrEmpty(workload.GetProperty("policyVersion").GetString()));
        Assert.InRange(workload.GetProperty("expiresInSeconds").GetDouble(), 60, 3700);
        Assert.Contains("MeshKit Root CA", workload.GetProperty("certificateIssuer").GetString(), StringComparison.Ordinal);
        Assert.Empty(workload.GetProperty("findings").EnumerateArray());

        var table = await bed.RunAsync("status");
        Assert.Equal(0, table.ExitCode);
        Assert.Contains("spiffe://test.mesh/ns/default/svc/frontend", table.Out, StringComparison.Ordinal);
        Assert.Contains("none flagged", table.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_workload_that_received_the_stored_central_policy_is_not_stale()
    {
        await using var bed = await CliBed.StartAsync();
        await using var frontend = await StartWorkloadAsync(bed, "frontend", "v1");
        var document = bed.Write("frontend.json", """{ "Policy": { "Destinations": { "orders": { "Timeout": "00:00:05" } } } }""");
        var applied = await bed.RunAsync("policy", "apply", "frontend", document, "--json");
        Assert.True(applied.ExitCode == 0, applied.ToString());
        var version = applied.Json.GetProperty("version").GetString();

        CliResult? status = null;
        await Eventually.WaitAsync(
            async () =>
            {
                status = await bed.RunAsync("status", "--json");
                return status.Json.GetProperty("workloads").EnumerateArray().Any(w => w.GetProperty("centralPolicyVersion").GetString() == version);
            },
            TimeSpan.FromSeconds(10),
            "the workload to report the central policy",
            TimeSpan.FromMilliseconds(200));

        Assert.True(status!.ExitCode == 0, status.ToString());
        var workload = status.Json.GetProperty("workloads")[0];
        Assert.Equal(version, workload.GetProperty("expectedCentralPolicyVersion").GetString());
        Assert.Empty(workload.GetProperty("findings").EnumerateArray());
    }

    [Fact]
    public void Certificates_near_expiry_stale_policy_and_old_bundles_are_flagged()
    {
        var now = DateTimeOffset.Parse("2026-01-01T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture);
        WorkloadEntry Entry(string service, DateTimeOffset notBefore, DateTimeOffset notAfter, string? bundle, string? central) =>
            new($"spiffe://td/ns/default/svc/{service}", service + "-1", "01", notAfter, notBefore, "CN=root", bundle, "p1", central, null, "v1", now.AddSeconds(-5));
        var list = new WorkloadList("td", "b2",
        [
            Entry("fine", now.AddMinutes(-30), now.AddMinutes(30), "b2", "c1"),
            Entry("near", now.AddMinutes(-55), now.AddMinutes(5), "b2", "c1"),
            Entry("expired", now.AddMinutes(-60), now.AddSeconds(-1), "b2", "c1"),
            Entry("short", now.AddMinutes(-3), now.AddMinutes(3), "b2", "c1"),
            Entry("stale", now.AddMinutes(-30), now.AddMinutes(30), "b2", "c0"),
            Entry("old", now.AddMinutes(-30), now.AddMinutes(30), "b1", "c1"),
            Entry("new", now.AddMinutes(-30), now.AddMinutes(30), null, null) with { PolicyVersion = null },
        ]);
        var central = new PolicyIndex("directory", [.. new[] { "fine", "near", "expired", "short", "stale", "old", "new" }.Select(s => new PolicyIndexEntry(s, "c1"))]);

        var report = StatusCommand.Build(new Uri("https://cp/"), list, central, now, TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(10));
        var lenient = StatusCommand.Build(new Uri("https://cp/"), list, central, now, TimeSpan.Zero, TimeSpan.FromMinutes(10));

        IReadOnlyList<string> Findings(StatusReport r, string service) => r.Workloads.Single(w => w.Service == service).Findings;
        Assert.Empty(Findings(report, "fine"));
        Assert.Equal(["certificate-near-expiry"], Findings(report, "near"));
        Assert.Equal(["certificate-expired"], Findings(report, "expired"));
        Assert.Equal(["certificate-near-expiry"], Findings(report, "short"));
        Assert.Empty(Findings(lenient, "short"));
        Assert.Equal(["stale-policy"], Findings(report, "stale"));
        Assert.Equal(["old-bundle"], Findings(report, "old"));
        Assert.Empty(Findings(report, "new"));
        Assert.False(report.Workloads.Single(w => w.Service == "new").Polled);
        Assert.Equal(5, report.Findings);
    }

    [Fact]
    public async Task Status_runs_as_a_real_process_against_a_running_control_service()
    {
        await using var bed = await CliBed.StartAsync();
        await using var frontend = await StartWorkloadAsync(bed, "frontend", "v2");
        await WaitForWorkloadAsync(bed, "frontend");

        var directory = typeof(StatusTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "MeshctlDirectory").Value!;
        var meshctl = File.Exists(Path.Combine(directory, "meshctl.dll")) ? Path.Combine(directory, "meshctl.dll") : Path.Combine(AppContext.BaseDirectory, "meshctl.dll");
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
        };
        foreach (var arg in new[] { meshctl, "status", "--json", "--control-plane", bed.ControlPlane.BaseAddress.ToString(), "--trust-bundle", bed.ControlPlane.TrustBundlePath })
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["MESHCTL_ADMIN_TOKEN"] = ControlPlaneHost.AdminToken;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var error = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(timeout.Token);

        var stdout = await output;
        var stderr = await error;
        Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}\n{stdout}\n{stderr}");
        var json = JsonDocument.Parse(stdout).RootElement;
        var workload = Assert.Single(json.GetProperty("workloads").EnumerateArray());
        Assert.Equal($"spiffe://{ControlPlaneHost.TrustDomain}/ns/default/svc/frontend", workload.GetProperty("spiffeId").GetString());
        Assert.Equal("v2", workload.GetProperty("serviceVersion").GetString());
        Assert.DoesNotContain(ControlPlaneHost.AdminToken, stdout + stderr, StringComparison.Ordinal);
    }

    internal static Task<MeshAppHost> StartWorkloadAsync(CliBed bed, string service, string version) =>
        MeshAppHost.StartAsync(bed.ControlPlane, service, CliBed.JoinToken,
            settings: new Dictionary<string, string?> { ["Mesh:Service:Version"] = version },
            meshEndpoint: false);

    internal static async Task<CliResult> WaitForWorkloadAsync(CliBed bed, string service)
    {
        CliResult? result = null;
        await Eventually.WaitAsync(
            async () =>
            {
                result = await bed.RunAsync("status", "--json");
                return result.ExitCode is 0 or 1 && result.Json.GetProperty("workloads").EnumerateArray().Any(w => w.GetProperty("service").GetString() == service && w.GetProperty("polled").GetBoolean());
            },
            TimeSpan.FromSeconds(10),
            $"{service} to report to the control service",
            TimeSpan.FromMilliseconds(200));
        return result!;
    }
}
