using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using MeshKit.Identity;
using MeshKit.Testing;
using MeshKit.Testing.Consul;
using MeshKit.Tests.Identity;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Tests.Security;

/// <summary>
/// Revocations hold on every replica: token and identity revocations live in the shared store (Consul KV), a replica
/// that restarts while Consul is down keeps what it knew, and one that never knew anything issues nothing.
/// </summary>
[Trait("Area", "Security")]
public sealed class SharedRevocationTests
{
    [Fact]
    public async Task A_token_revoked_on_one_replica_is_refused_by_the_other_within_the_watch_latency()
    {
        await using var consul = await ConsulDouble.StartAsync();
        await using var first = await ControlPlaneHost.StartAsync(Replica(consul));
        await using var second = await ControlPlaneHost.StartAsync(SameRoot(Replica(consul), first));

        // A replica issues once it has read the revocation lists from Consul (a moment after it starts).
        await Eventually.WaitAsync(async () => (await SignWithTokenAsync(second, "orders")).Status == HttpStatusCode.OK, TimeSpan.FromSeconds(10), "the second replica to issue");

        using var admin = first.CreateAdminClient();
        using var revoke = await admin.PostAsync("v1/tokens/tests/revoke", null, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);

        await Eventually.WaitAsync(async () => (await SignWithTokenAsync(second, "orders")).Reason == "token-revoked", TimeSpan.FromSeconds(10), "the second replica to refuse the revoked token");
        using var secondAdmin = second.CreateAdminClient();
        var tokens = await secondAdmin.GetFromJsonAsync<JsonElement>("v1/tokens", TestContext.Current.CancellationToken);
        Assert.True(tokens.EnumerateArray().Single(t => t.GetProperty("name").GetString() == "tests").GetProperty("revoked").GetBoolean());
    }

    [Fact]
    public async Task An_identity_revoked_on_one_replica_reaches_its_workloads_through_the_other_and_renewal_is_refused()
    {
        await using var consul = await ConsulDouble.StartAsync();
        await using var first = await ControlPlaneHost.StartAsync(Replica(consul));
        await using var second = await ControlPlaneHost.StartAsync(SameRoot(Replica(consul), first));

        // inventory's control service is the second replica; the operator revokes it on the first.
        await using var inventory = await MeshAppHost.StartAsync(second, "inventory", MeshTestBed.Token, meshEndpoint: false);
        var identity = inventory.Services.GetRequiredService<WorkloadIdentitySource>();
        var held = identity.GetValid().Certificate;
        using var admin = first.CreateAdminClient();
        using var revoke = await admin.PostAsJsonAsync("v1/identities/revoke", new { spiffeId = $"spiffe://{ControlPlaneHost.TrustDomain}/ns/default/svc/inventory", reason = "key leaked" }, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);

        // The workload hears it on its watch of the second replica and drops its certificate: its calls fail closed.
        await Eventually.WaitAsync(() => identity.Current is null, TimeSpan.FromSeconds(10), "inventory to drop its revoked certificate");
        Assert.Throws<MeshIdentityException>(() => identity.GetValid());
        Assert.Contains(inventory.Logs.Entries, e => e.EventId.Id == 2103 && e.Message.Contains("key leaked", StringComparison.Ordinal));

        // Renewal over mTLS with the certificate it held, and a token, are both refused by the second replica.
        using var renew = second.CreateClient(clientCertificate: held);
        var renewal = await PostCsrAsync(renew, "inventory");
        Assert.Equal((HttpStatusCode.Forbidden, "identity-revoked"), (renewal.Status, renewal.Reason));
        Assert.Equal("identity-revoked", (await SignWithTokenAsync(second, "inventory")).Reason);

        // Restored on the second, it is restored on the first too.
        using var secondAdmin = second.CreateAdminClient();
        using var restore = await secondAdmin.PostAsJsonAsync("v1/identities/restore", new { spiffeId = $"spiffe://{ControlPlaneHost.TrustDomain}/ns/default/svc/inventory" }, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, restore.StatusCode);
        await Eventually.WaitAsync(async () => (await SignWithTokenAsync(first, "inventory")).Status == HttpStatusCode.OK, TimeSpan.FromSeconds(10), "the first replica to issue again");
    }

    [Fact]
    public async Task A_replica_restarted_while_Consul_is_down_keeps_the_revocations_it_knew_and_a_new_one_issues_nothing()
    {
        await using var consul = await ConsulDouble.StartAsync();
        await using var first = await ControlPlaneHost.StartAsync(Replica(consul));
        using (var admin = first.CreateAdminClient())
        {
            using var revoke = await admin.PostAsync("v1/tokens/tests/revoke", null, TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        }

        await consul.StopAsync();
        await first.StopAsync();
        await first.StartAsync();
        Assert.Equal("token-revoked", (await SignWithTokenAsync(first, "orders")).Reason);

        // A revocation cannot be recorded while the shared store is down: 503, and nothing pretends it was.
        using (var admin = first.CreateAdminClient())
        {
            using var revoke = await admin.PostAsJsonAsync("v1/identities/revoke", new { spiffeId = $"spiffe://{ControlPlaneHost.TrustDomain}/ns/default/svc/orders" }, TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, revoke.StatusCode);
            Assert.Equal("revocation-store-unavailable", (await revoke.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("reason").GetString());
        }

        // A replica that never read the lists refuses to issue rather than issue to what may be revoked.
        await using var fresh = await ControlPlaneHost.StartAsync(SameRoot(Replica(consul), first));
        var refused = await SignWithTokenAsync(fresh, "orders");
        Assert.Equal((HttpStatusCode.ServiceUnavailable, "revocations-unknown"), (refused.Status, refused.Reason));

        // Consul back: the fresh replica reads the lists and refuses the revoked token for the right reason.
        await consul.StartAsync();
        await Eventually.WaitAsync(async () => (await SignWithTokenAsync(fresh, "orders")).Reason == "token-revoked", TimeSpan.FromSeconds(15), "the fresh replica to read the revocations");
    }

    [Fact]
    public async Task A_revocation_list_on_disk_that_is_not_JSON_stops_the_control_service_rather_than_un_revoke()
    {
        using var data = new TempDirectory("cp-corrupt");
        await File.WriteAllTextAsync(Path.Combine(data.Path, "revoked-identities.json"), "{ \"spiffe://test.mesh/ns/default/svc/orders\": ", TestContext.Current.CancellationToken);
        var error = await Assert.ThrowsAsync<InvalidDataException>(() => ControlPlaneHost.StartAsync(MeshTestBed.TokenSettings(), data.Path));
        Assert.Contains("revoked-identities.json", error.Message, StringComparison.Ordinal);
    }

    private static Dictionary<string, string?> Replica(ConsulDouble consul)
    {
        var settings = MeshTestBed.TokenSettings();
        settings["ControlPlane:Consul:Address"] = consul.Address.ToString();
        settings["ControlPlane:Consul:Wait"] = "00:00:01";
        return settings;
    }

    /// <summary>The second replica signs under the first one's root (user-supplied CA), so workloads trust both.</summary>
    private static Dictionary<string, string?> SameRoot(Dictionary<string, string?> settings, ControlPlaneHost first)
    {
        var certificate = Directory.GetFiles(Path.Combine(first.DataDirectory, "ca"), "*.crt.pem").Single();
        settings["ControlPlane:Ca:CertificatePath"] = certificate;
        settings["ControlPlane:Ca:KeyPath"] = certificate.Replace(".crt.pem", ".key.pem", StringComparison.Ordinal);
        return settings;
    }

    private static async Task<(HttpStatusCode Status, string? Reason)> SignWithTokenAsync(ControlPlaneHost control, string service)
    {
        using var client = control.CreateClient(bearer: MeshTestBed.Token);
        return await PostCsrAsync(client, service);
    }

    private static async Task<(HttpStatusCode Status, string? Reason)> PostCsrAsync(HttpClient client, string service)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var csr = CertificateSigningRequests.Create(key, SpiffeId.Create(ControlPlaneHost.TrustDomain, "default", service));
        using var response = await client.PostAsJsonAsync("v1/identity/sign", new { csr }, TestContext.Current.CancellationToken);
        if (response.IsSuccessStatusCode)
        {
            return (response.StatusCode, null);
        }

        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        return (response.StatusCode, problem.TryGetProperty("reason", out var reason) ? reason.GetString() : null);
    }
}
