using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography.X509Certificates;
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
/// One CA across replicas without a shared key (docs/security.md, "One CA across replicas"): each replica issues with its
/// own intermediate under the operator's root, workloads of different replicas trust each other, and a user-supplied root
/// is rotated replica by replica with <c>POST /v1/ca/reload</c>, each step checked against the other replicas' trust.
/// </summary>
[Trait("Area", "ControlPlaneHA")]
[Trait("Area", "Identity")]
[Collection(LoadCollection.Name)]
public sealed class ReplicaCertificateAuthorityTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Workloads_of_different_replicas_each_under_its_own_intermediate_call_each_other_on_fresh_connections()
    {
        await using var set = await ReplicaSet.StartAsync();

        // orders talks to replica 1 only, frontend to replica 2 only: their certificates come from different intermediates.
        await using var orders = await MeshAppHost.StartAsync(set.Replicas[1], "orders", MeshTestBed.Token, map: app => app.MapGet("/api/orders", () => "orders"));
        await using var frontend = await MeshAppHost.StartAsync(set.Replicas[2], "frontend", MeshTestBed.Token,
            new Dictionary<string, string?>(orders.AsStaticEndpoint("orders")) { ["Mesh:Transport:MaxConnectionLifetime"] = "00:00:00.050" },
            configureServices: s => s.AddMeshClient("orders"), meshEndpoint: false);
        var issuers = new[] { orders, frontend }.Select(w => Identity(w).Intermediates.Single().Subject).ToList();
        Assert.NotEqual(issuers[0], issuers[1]);

        // No replica was given the root's key: none of their files holds it.
        var rootKey = await File.ReadAllTextAsync(set.Ca.RootKeyPath, Ct);
        foreach (var replica in set.Replicas)
        {
            Assert.DoesNotContain(Directory.EnumerateFiles(replica.DataDirectory, "*", SearchOption.AllDirectories), f => File.ReadAllText(f).Contains(rootKey.Trim(), StringComparison.Ordinal));
        }

        // Each call on a new connection (connections live 50 ms): a resumed TLS session would lose the intermediates.
        var client = frontend.Client("orders");
        for (var i = 0; i < 12; i++)
        {
            Assert.Equal("orders", await client.GetStringAsync("/api/orders", Ct));
            await Task.Delay(80, Ct);
        }

        Assert.DoesNotContain(orders.Logs.Entries, e => e.EventId.Id == 5001);
    }

    [Fact]
    public async Task A_user_supplied_root_is_rotated_replica_by_replica_with_reloads_each_unsafe_step_refused_and_no_request_failing()
    {
        var files = new List<Dictionary<string, string?>>();
        await using var set = await ReplicaSet.StartAsync(configure: (_, settings) => files.Add(settings));
        await using var orders = await MeshAppHost.StartAsync(set.Replicas[0], "orders", MeshTestBed.Token, set.AddressSettings(), map: app => app.MapGet("/api/orders", () => "orders"));
        await using var frontend = await MeshAppHost.StartAsync(set.Replicas[1], "frontend", MeshTestBed.Token,
            new Dictionary<string, string?>(orders.AsStaticEndpoint("orders")) { ["Mesh:ControlPlane:Address"] = set.Replicas[1].BaseAddress.ToString() },
            configureServices: s => s.AddMeshClient("orders"), meshEndpoint: false);
        var client = frontend.Client("orders");
        await using var load = ScenarioLoad.Start("replicas-ca-rotation", async ct => (await client.GetAsync("/api/orders", ct)).EnsureSuccessStatusCode());
        await load.CallsAsync(20);

        using var next = new OperatorCa();
        var bundlePath = set.Ca.RootCertificatePath; // every replica's ControlPlane:Ca:TrustBundlePath
        var oldRoot = await File.ReadAllTextAsync(bundlePath, Ct);
        var newRoot = await File.ReadAllTextAsync(next.RootCertificatePath, Ct);

        // An intermediate under a root the replica does not publish: refused, naming the setting; the replica is unchanged.
        var oldFiles = await ReadCaFilesAsync(files[0]);
        await WriteCaFilesAsync(files[0], next.WriteIntermediate());
        var (status, reason, detail) = await ReloadAsync(set.Replicas[0]);
        Assert.True(status == HttpStatusCode.BadRequest && reason == "ca-files-invalid", $"{(int)status} {reason}: {detail}");
        Assert.Contains("ControlPlane:Ca:CertificatePath", detail, StringComparison.Ordinal);

        // Step 1, trust the new root. Issuing under it on replica 0 before the others trust it: refused, nothing changed.
        await File.WriteAllTextAsync(bundlePath, oldRoot + "\n" + newRoot, Ct);
        (status, reason, detail) = await ReloadAsync(set.Replicas[0]);
        Assert.True(status == HttpStatusCode.Conflict && reason == "ca-trust-conflict", $"{(int)status} {reason}: {detail}");
        Assert.Contains("does not trust root", detail, StringComparison.Ordinal);
        await WriteCaFilesAsync(files[0], oldFiles);
        foreach (var replica in set.Replicas)
        {
            await ReloadOkAsync(replica);
        }

        await WaitForBundleAsync(next.Root, orders, frontend);

        // Step 2, issue under the new root, replica by replica. Dropping the old root while one still issues under it: refused.
        await WriteCaFilesAsync(files[0], next.WriteIntermediate());
        await ReloadOkAsync(set.Replicas[0]);
        await File.WriteAllTextAsync(bundlePath, newRoot, Ct);
        (status, reason, detail) = await ReloadAsync(set.Replicas[0]);
        Assert.True(status == HttpStatusCode.Conflict && reason == "ca-trust-conflict", $"{(int)status} {reason}: {detail}");
        Assert.Contains("issues certificates under root", detail, StringComparison.Ordinal);
        await File.WriteAllTextAsync(bundlePath, oldRoot + "\n" + newRoot, Ct);
        for (var i = 1; i < set.Replicas.Count; i++)
        {
            await WriteCaFilesAsync(files[i], next.WriteIntermediate());
            await ReloadOkAsync(set.Replicas[i]);
        }

        // Every workload renews under the new root (5 s certificates) before the old root goes.
        await Eventually.WaitAsync(() => new[] { orders, frontend }.All(w => Identity(w).Intermediates.Single().IssuerName.Name == next.Root.SubjectName.Name), TimeSpan.FromSeconds(10), "both workloads to hold certificates under the new root");

        // Step 3, remove the old root everywhere.
        await File.WriteAllTextAsync(bundlePath, newRoot, Ct);
        foreach (var replica in set.Replicas)
        {
            await ReloadOkAsync(replica);
        }

        await Eventually.WaitAsync(() => new[] { orders, frontend }.All(w => Identity(w).Bundle.Roots.Count == 1), TimeSpan.FromSeconds(5), "both workloads to drop the old root");
        await load.CallsAsync(20);
        var result = await load.StopAsync();
        Assert.True(result.Failed == 0, result.ToString());
    }

    private static WorkloadIdentity Identity(MeshAppHost workload) => workload.Services.GetRequiredService<WorkloadIdentitySource>().Current!;

    private static async Task WaitForBundleAsync(X509Certificate2 root, params MeshAppHost[] workloads) =>
        await Eventually.WaitAsync(() => workloads.All(w => Identity(w).Bundle.Contains(root)), TimeSpan.FromSeconds(5), "every workload to trust the new root");

    private static async Task<(string Certificate, string Key)> ReadCaFilesAsync(Dictionary<string, string?> settings) =>
        (await File.ReadAllTextAsync(settings["ControlPlane:Ca:CertificatePath"]!, Ct), await File.ReadAllTextAsync(settings["ControlPlane:Ca:KeyPath"]!, Ct));

    private static async Task WriteCaFilesAsync(Dictionary<string, string?> settings, (string CertificatePath, string KeyPath, X509Certificate2 Certificate) intermediate) =>
        await WriteCaFilesAsync(settings, (await File.ReadAllTextAsync(intermediate.CertificatePath, Ct), await File.ReadAllTextAsync(intermediate.KeyPath, Ct)));

    private static async Task WriteCaFilesAsync(Dictionary<string, string?> settings, (string Certificate, string Key) content)
    {
        await File.WriteAllTextAsync(settings["ControlPlane:Ca:CertificatePath"]!, content.Certificate, Ct);
        await File.WriteAllTextAsync(settings["ControlPlane:Ca:KeyPath"]!, content.Key, Ct);
    }

    private static async Task ReloadOkAsync(ControlPlaneHost replica)
    {
        var (status, reason, detail) = await ReloadAsync(replica);
        Assert.True(status == HttpStatusCode.OK, $"reload of {replica.BaseAddress}: {(int)status} {reason}: {detail}");
    }

    private static async Task<(HttpStatusCode Status, string? Reason, string Detail)> ReloadAsync(ControlPlaneHost replica)
    {
        using var admin = replica.CreateAdminClient();
        using var response = await admin.PostAsync("v1/ca/reload", null, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        if (response.IsSuccessStatusCode)
        {
            return (response.StatusCode, null, body);
        }

        using var problem = JsonDocument.Parse(body);
        return (response.StatusCode, problem.RootElement.GetProperty("reason").GetString(), problem.RootElement.GetProperty("detail").GetString() ?? string.Empty);
    }
}
