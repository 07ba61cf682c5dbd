using System.Net.Http.Json;
using System.Text.Json;
using MeshKit.ControlChannel;
using MeshKit.Hosting;
using MeshKit.Identity;
using MeshKit.Testing;
using MeshKit.Tests.Traffic;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshKit.Tests.Identity;

/// <summary>
/// Restarts after a CA rotation (issue 15 §4): a workload keeps the last trust bundle the control service sent it in
/// <c>Mesh:ControlPlane:StateDirectory</c> and trusts the control service on first contact through that bundle together
/// with its configured <c>TrustBundlePath</c>.
/// </summary>
[Trait("Area", "Identity")]
public sealed class RestartAfterRotationTests(MeshTestBed bed) : IClassFixture<MeshTestBed>
{
    [Fact]
    public async Task A_workload_restarted_after_a_three_step_CA_rotation_with_its_original_bundle_file_starts_and_calls_over_mtls()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var controlPlane = await ControlPlaneHost.StartAsync(new Dictionary<string, string?>
        {
            ["ControlPlane:JoinTokens:t:Token"] = MeshTestBed.Token,
            ["ControlPlane:JoinTokens:t:Services:0"] = "orders",
            ["ControlPlane:JoinTokens:t:Services:1"] = "frontend",
            ["ControlPlane:CertificateLifetime"] = "00:00:05",
        });
        using var files = new TempDirectory("restart");

        // The file both workloads were deployed with: the control service's bundle before the rotation, one root. A copy,
        // because the control service rewrites its own trust-bundle.pem on every rotation step.
        var originalBundlePath = Path.Combine(files.Path, "trust-bundle.pem");
        File.Copy(controlPlane.TrustBundlePath, originalBundlePath);
        var originalRoot = Assert.Single(TrustBundle.FromPem(File.ReadAllText(originalBundlePath)).Roots);
        var ordersState = Path.Combine(files.Path, "orders-state");
        var frontendState = Path.Combine(files.Path, "frontend-state");
        var deployed = new Dictionary<string, string?> { ["Mesh:ControlPlane:TrustBundlePath"] = originalBundlePath };

        var orders = await MeshAppHost.StartAsync(controlPlane, "orders", MeshTestBed.Token, deployed, map: app => app.MapGet("/", () => "ok"), stateDirectory: ordersState);
        var frontend = await MeshAppHost.StartAsync(controlPlane, "frontend", MeshTestBed.Token, deployed, meshEndpoint: false, stateDirectory: frontendState);
        string finalBundle;
        try
        {
            finalBundle = await RotateInThreeStepsAsync(controlPlane, [orders, frontend], ct);
        }
        finally
        {
            // Stopping waits for the control-channel watcher, so the bundle it applied last has been saved by now.
            await orders.DisposeAsync();
            await frontend.DisposeAsync();
        }

        // The root the deployed file holds is gone from the mesh: the control service's certificate no longer chains to it.
        Assert.False(controlPlane.TrustBundle.Contains(originalRoot));
        Assert.Single(TrustBundle.FromPem(File.ReadAllText(originalBundlePath)).Roots);

        // Restart both with the same deployed file and the same state folders. Before saved bundles this timed out here, with
        // the StartupTimeout error: the deployed file trusted only the removed root.
        var restart = new Dictionary<string, string?>(deployed) { ["Mesh:ControlPlane:StartupTimeout"] = "00:00:04" };
        await using var ordersAgain = await MeshAppHost.StartAsync(controlPlane, "orders", MeshTestBed.Token, restart, map: app => app.MapGet("/", () => "ok"), stateDirectory: ordersState);
        await using var frontendAgain = await MeshAppHost.StartAsync(controlPlane, "frontend", MeshTestBed.Token,
            new Dictionary<string, string?>(restart.Concat(ordersAgain.AsStaticEndpoint("orders"))),
            configureServices: s => s.AddMeshClient("orders"), meshEndpoint: false, stateDirectory: frontendState);

        // They call and serve over mTLS with certificates from the new root.
        Assert.Equal("ok", await frontendAgain.Client("orders").GetStringAsync("/", ct));
        foreach (var host in new[] { ordersAgain, frontendAgain })
        {
            var identity = host.Services.GetRequiredService<WorkloadIdentitySource>().Current!;
            Assert.Equal(finalBundle, identity.Bundle.Version);
            Assert.NotEqual(originalRoot.Subject, identity.Certificate.Issuer);

            // First contact used the one-root bundle the first run received last, and the state folder still holds it.
            Assert.Contains(host.Logs.Entries, e => e.EventId.Id == 2114 && e.Message.Contains(finalBundle, StringComparison.Ordinal));
            Assert.Equal(finalBundle, SavedVersion(host.StateDirectory));
        }
    }

    [Fact]
    public async Task During_a_rotation_overlap_a_workload_whose_file_holds_either_root_alone_reaches_the_control_service_and_after_it_the_removed_root_does_not()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var controlPlane = await ControlPlaneHost.StartAsync(new Dictionary<string, string?>
        {
            ["ControlPlane:JoinTokens:t:Token"] = MeshTestBed.Token,
            ["ControlPlane:JoinTokens:t:Services:0"] = "orders",
        });
        using var files = new TempDirectory("overlap");
        var oldRoot = Assert.Single(controlPlane.TrustBundle.Roots);
        var oldOnly = Path.Combine(files.Path, "old-root.pem");
        await File.WriteAllTextAsync(oldOnly, oldRoot.ExportCertificatePem(), ct);
        using var admin = controlPlane.CreateAdminClient();

        // New workloads, no saved state, a file with one root, and a short startup timeout for when the answer is no.
        async Task<MeshAppHost> StartFreshAsync(string bundleFile, string timeout = "00:00:04") =>
            await MeshAppHost.StartAsync(controlPlane, "orders", MeshTestBed.Token, new Dictionary<string, string?>
            {
                ["Mesh:ControlPlane:TrustBundlePath"] = bundleFile,
                ["Mesh:ControlPlane:StartupTimeout"] = timeout,
            });

        // 1. A new root joins; the old one still issues. A workload deployed with only the new root reaches the control service.
        using var addResponse = await admin.PostAsync("v1/ca/roots", null, ct);
        var roots = (await addResponse.EnsureSuccessStatusCode().Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("roots").EnumerateArray().ToList();
        var newRootId = roots.Single(r => !r.GetProperty("active").GetBoolean()).GetProperty("id").GetString();
        var oldRootId = roots.Single(r => r.GetProperty("active").GetBoolean()).GetProperty("id").GetString();
        var newRoot = Assert.Single(controlPlane.TrustBundle.Roots, r => !r.RawDataMemory.Span.SequenceEqual(oldRoot.RawDataMemory.Span));
        var newOnly = Path.Combine(files.Path, "new-root.pem");
        await File.WriteAllTextAsync(newOnly, newRoot.ExportCertificatePem(), ct);
        await using (var early = await StartFreshAsync(newOnly))
        {
            Assert.Equal(oldRoot.Subject, early.Services.GetRequiredService<WorkloadIdentitySource>().Current!.Certificate.Issuer);
        }

        // 2. The new root issues, the old one is still in the bundle. A workload deployed before the rotation (old root only)
        // reaches the control service, whose certificate now comes from the new root.
        (await admin.PostAsync($"v1/ca/roots/{newRootId}/activate", null, ct)).EnsureSuccessStatusCode();
        await using (var late = await StartFreshAsync(oldOnly))
        {
            Assert.Equal(newRoot.Subject, late.Services.GetRequiredService<WorkloadIdentitySource>().Current!.Certificate.Issuer);
        }

        // 3. The old root leaves the bundle: it no longer vouches for the control service.
        (await admin.DeleteAsync($"v1/ca/roots/{oldRootId}", ct)).EnsureSuccessStatusCode();
        var refused = await Assert.ThrowsAsync<MeshIdentityException>(() => StartFreshAsync(oldOnly, timeout: "00:00:02"));
        Assert.Contains("Mesh:ControlPlane:StartupTimeout", refused.Message, StringComparison.Ordinal);
        await using var current = await StartFreshAsync(newOnly);
    }

    [Fact]
    public async Task A_saved_bundle_lets_a_workload_whose_configured_file_lacks_the_current_root_reach_the_control_service()
    {
        using var files = new TempDirectory("restart");
        var foreignRootPath = Path.Combine(files.Path, "foreign.pem");
        using (var foreign = TestCertificates.CreateRootCa())
        {
            await File.WriteAllTextAsync(foreignRootPath, foreign.ExportCertificatePem(), TestContext.Current.CancellationToken);
        }

        // What an earlier run saved: the control service's bundle, in an owner-only file.
        var state = Path.Combine(files.Path, "state");
        OwnerOnlyFile.WriteAllText(Path.Combine(state, SavedTrustBundle.FileName), bed.ControlPlane.TrustBundle.Pem);

        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token, new Dictionary<string, string?>
        {
            ["Mesh:ControlPlane:TrustBundlePath"] = foreignRootPath,
            ["Mesh:ControlPlane:StartupTimeout"] = "00:00:03",
        }, stateDirectory: state);

        Assert.NotNull(orders.Services.GetRequiredService<WorkloadIdentitySource>().Current);
    }

    [Fact]
    public async Task A_corrupt_saved_bundle_is_logged_and_ignored_and_the_workload_starts_with_its_configured_file()
    {
        using var state = new TempDirectory("state");
        var saved = Path.Combine(state.Path, SavedTrustBundle.FileName);
        OwnerOnlyFile.WriteAllText(saved, "-----BEGIN CERTIFICATE-----\nthis is not a certificate\n-----END CERTIFICATE-----\n");

        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token, stateDirectory: state.Path);

        var ignored = Assert.Single(orders.Logs.Entries, e => e.EventId.Id == 2111);
        Assert.Equal(LogLevel.Warning, ignored.Level);
        Assert.Contains(saved, ignored.Message, StringComparison.Ordinal);
        Assert.Contains("Mesh:ControlPlane:TrustBundlePath", ignored.Message, StringComparison.Ordinal);

        // The first bundle the control service sent replaced the corrupt file.
        var identity = orders.Services.GetRequiredService<WorkloadIdentitySource>().Current!;
        Assert.Equal(identity.Bundle.Version, SavedVersion(state.Path));
    }

    [Fact]
    public async Task The_saved_bundle_and_its_folder_are_owner_only()
    {
        if (OperatingSystem.IsWindows())
        {
            Assert.Skip("Unix file modes only.");
            return;
        }

        using var files = new TempDirectory("state");
        var state = Path.Combine(files.Path, "not", "there", "yet");

        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token, stateDirectory: state);

        var saved = Path.Combine(state, SavedTrustBundle.FileName);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(saved));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(state));
        Assert.Equal(orders.Services.GetRequiredService<WorkloadIdentitySource>().Current!.Bundle.Pem, await File.ReadAllTextAsync(saved, TestContext.Current.CancellationToken));

        // Nothing else is left behind: no temporary files from the atomic replace.
        Assert.Equal(new[] { saved }, Directory.GetFiles(state));
    }

    [Fact]
    [Trait("Area", "Security")]
    public void A_saved_bundle_that_other_users_could_write_is_ignored_and_logged()
    {
        if (OperatingSystem.IsWindows())
        {
            Assert.Skip("Unix file modes only.");
            return;
        }

        using var state = new TempDirectory("state");
        var path = Path.Combine(state.Path, SavedTrustBundle.FileName);
        OwnerOnlyFile.WriteAllText(path, bed.ControlPlane.TrustBundle.Pem);
        var logs = new TestLogSink();
        var store = Store(state.Path, logs);
        Assert.NotNull(store.Load());

        // A root planted by another user would let its holder pose as the control service: such a file is not used.
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
        Assert.Null(Store(state.Path, logs).Load());
        Assert.Contains(logs.Entries, e => e.EventId.Id == 2111 && e.Message.Contains("writable by other users (mode 0660", StringComparison.Ordinal));

        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.SetUnixFileMode(state.Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute);
        Assert.Null(Store(state.Path, logs).Load());
        Assert.Contains(logs.Entries, e => e.EventId.Id == 2111 && e.Message.Contains("its folder", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_state_directory_defaults_to_a_per_user_folder_of_the_workload_and_an_empty_value_turns_it_off()
    {
        var options = new MeshOptions { TrustDomain = "example.org", Service = { Name = "orders", Namespace = "shop" } };
        var local = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify);
        Assert.Equal(Path.Combine(local, "MeshKit", "workloads", "example.org", "shop", "orders"), SavedTrustBundle.ResolveDirectory(options));

        options.ControlPlane.StateDirectory = "relative/state";
        Assert.Equal(Path.GetFullPath("relative/state"), SavedTrustBundle.ResolveDirectory(options));

        options.ControlPlane.StateDirectory = string.Empty;
        Assert.Null(SavedTrustBundle.ResolveDirectory(options));

        options.ControlPlane.StateDirectory = "state\0";
        var invalid = new MeshOptionsValidator().Validate(null, options);
        Assert.Contains(invalid.Failures!, f => f.StartsWith("Mesh:ControlPlane:StateDirectory contains a NUL character", StringComparison.Ordinal));

        // From configuration: an empty value reaches the option as empty (off), and the workload writes nothing.
        using var state = new TempDirectory("state");
        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token,
            new Dictionary<string, string?> { ["Mesh:ControlPlane:StateDirectory"] = string.Empty }, stateDirectory: state.Path);
        Assert.Null(orders.Services.GetRequiredService<SavedTrustBundle>().FilePath);
        Assert.Empty(Directory.GetFileSystemEntries(state.Path));
    }

    /// <summary>Adds a root, switches issuance to it once every workload trusts it, and removes the old root once every workload holds a certificate from the new one.</summary>
    /// <returns>The final bundle's version.</returns>
    internal static async Task<string> RotateInThreeStepsAsync(ControlPlaneHost controlPlane, MeshAppHost[] workloads, CancellationToken ct)
    {
        using var admin = controlPlane.CreateAdminClient();
        WorkloadIdentity Current(MeshAppHost host) => host.Services.GetRequiredService<WorkloadIdentitySource>().Current!;

        // 1. A new root joins the bundle.
        using var addResponse = await admin.PostAsync("v1/ca/roots", null, ct);
        var added = await addResponse.EnsureSuccessStatusCode().Content.ReadFromJsonAsync<JsonElement>(ct);
        var roots = added.GetProperty("roots").EnumerateArray().ToList();
        var newRoot = roots.Single(r => !r.GetProperty("active").GetBoolean()).GetProperty("id").GetString();
        var oldRoot = roots.Single(r => r.GetProperty("active").GetBoolean()).GetProperty("id").GetString();
        var bothRoots = added.GetProperty("bundleVersion").GetString();
        await Eventually.WaitAsync(() => workloads.All(w => Current(w).Bundle.Version == bothRoots), TimeSpan.FromSeconds(10), "every workload to trust both roots");

        // 2. Issuance switches to it; workloads renew at once.
        (await admin.PostAsync($"v1/ca/roots/{newRoot}/activate", null, ct)).EnsureSuccessStatusCode();
        var issuer = (await admin.GetFromJsonAsync<JsonElement>("v1/workloads", ct)).GetProperty("activeIssuer").GetString();
        await Eventually.WaitAsync(() => workloads.All(w => Current(w).Certificate.Issuer == issuer), TimeSpan.FromSeconds(10), "every workload to hold a certificate from the new root");

        // 3. The old root leaves the bundle.
        using var removeResponse = await admin.DeleteAsync($"v1/ca/roots/{oldRoot}", ct);
        var removed = await removeResponse.EnsureSuccessStatusCode().Content.ReadFromJsonAsync<JsonElement>(ct);
        var finalBundle = removed.GetProperty("bundleVersion").GetString()!;
        await Eventually.WaitAsync(() => workloads.All(w => Current(w).Bundle.Version == finalBundle), TimeSpan.FromSeconds(10), "every workload to drop the old root");
        return finalBundle;
    }

    private static string? SavedVersion(string stateDirectory)
    {
        var path = Path.Combine(stateDirectory, SavedTrustBundle.FileName);
        try
        {
            return File.Exists(path) ? TrustBundle.FromPem(File.ReadAllText(path)).Version : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private static SavedTrustBundle Store(string stateDirectory, TestLogSink logs)
    {
        var factory = LoggerFactory.Create(b => b.AddProvider(logs));
        return new SavedTrustBundle(Options.Create(new MeshOptions { ControlPlane = { StateDirectory = stateDirectory } }), factory.CreateLogger<SavedTrustBundle>());
    }
}
