using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using MeshKit.ControlPlane.Tokens;
using MeshKit.ControlPlane.Workloads;
using MeshKit.Identity;
using MeshKit.Testing;
using MeshKit.Testing.Consul;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.ControlPlane.Tests.Storage;

/// <summary>
/// Static stability's one allowed staleness, bounded: a replica cut off from Consul keeps issuing by the revocation lists it
/// holds for at most <c>ControlPlane:Consul:RevocationsMaxStaleness</c> after Consul last answered it, then refuses
/// (503 <c>revocations-stale</c>) until Consul answers again. Short settings: a 1-second wait and a 2-second bound.
/// </summary>
[Trait("Area", "ControlPlaneHA")]
public sealed class RevocationStalenessTests
{
    private const string Token = "staleness-join-token-0123456789ab";
    private static readonly TimeSpan MaxStaleness = TimeSpan.FromSeconds(2);

    private static readonly SpiffeId Orders = SpiffeId.Create(ControlPlaneHost.TrustDomain, "default", "orders");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_replica_cut_off_from_Consul_longer_than_the_bound_refuses_to_sign_and_signs_again_once_Consul_answers()
    {
        await using var consul = await ConsulDouble.StartAsync();
        await using var replica = await ControlPlaneHost.StartAsync(Settings(consul));
        await Eventually.WaitAsync(async () => (await SignAsync(replica)).Status == HttpStatusCode.OK, TimeSpan.FromSeconds(10), "the replica to read the revocation lists and issue");
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var issued = await SignAsync(replica, key);
        Assert.Equal(HttpStatusCode.OK, issued.Status);
        using var held = X509Certificate2.CreateFromPem(issued.Chain!).CopyWithPrivateKey(key);

        // Consul gone: after the bound (from its last answer) the replica refuses rather than issue by a list that may miss a revocation.
        await consul.StopAsync();
        var stopped = DateTimeOffset.UtcNow;
        await Eventually.WaitAsync(async () => (await SignAsync(replica)).Reason == "revocations-stale", TimeSpan.FromSeconds(10), "the replica to refuse by stale revocation lists");
        Assert.True(DateTimeOffset.UtcNow - stopped < MaxStaleness + TimeSpan.FromSeconds(5));
        var refused = await SignAsync(replica);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.Status);
        Assert.Contains("ControlPlane:Consul:RevocationsMaxStaleness", refused.Detail, StringComparison.Ordinal);
        await Eventually.WaitAsync(() => replica.Logs.Entries.Any(e => e.EventId.Id == 1205), TimeSpan.FromSeconds(5), "event 1205");

        // The watch is still served from what the replica holds; a renewal by the certificate held is refused like a first issuance.
        using (var workload = replica.CreateClient(clientCertificate: TestCertificates.ForTls(held)))
        {
            using var watch = await workload.GetAsync("v1/workloads/self/watch", Ct);
            Assert.Equal(HttpStatusCode.OK, watch.StatusCode);
            using var renewal = await workload.PostAsJsonAsync("v1/identity/sign", new { csr = CertificateSigningRequests.Create(key, Orders) }, Ct);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, renewal.StatusCode);
            Assert.Equal("revocations-stale", (await renewal.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("reason").GetString());
        }

        // Consul back: the blocking query answers again and the replica issues again.
        await consul.StartAsync();
        await Eventually.WaitAsync(async () => (await SignAsync(replica)).Status == HttpStatusCode.OK, TimeSpan.FromSeconds(10), "the replica to issue once Consul answers");
        await Eventually.WaitAsync(() => replica.Logs.Entries.Any(e => e.EventId.Id == 1206), TimeSpan.FromSeconds(5), "event 1206");
    }

    [Fact]
    public async Task A_replica_restarted_while_Consul_is_down_counts_from_its_copys_last_confirmation_not_from_its_start()
    {
        await using var consul = await ConsulDouble.StartAsync();
        await using var replica = await ControlPlaneHost.StartAsync(Settings(consul));
        await Eventually.WaitAsync(async () => (await SignAsync(replica)).Status == HttpStatusCode.OK, TimeSpan.FromSeconds(10), "the replica to read the revocation lists and issue");
        var copy = Path.Combine(replica.DataDirectory, "revoked-identities.json");
        Assert.True(File.Exists(copy));

        // Cut off and restarted after the bound has passed: a restart must not start the bound afresh (a replica restarted
        // in a loop would issue forever by an old list).
        await consul.StopAsync();
        await replica.StopAsync();
        await Eventually.WaitAsync(() => DateTime.UtcNow - File.GetLastWriteTimeUtc(copy) > MaxStaleness + TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(10), "the copy to be older than the bound");
        await replica.StartAsync();
        var refused = await SignAsync(replica);
        Assert.Equal((HttpStatusCode.ServiceUnavailable, "revocations-stale"), (refused.Status, refused.Reason));

        await consul.StartAsync();
        await Eventually.WaitAsync(async () => (await SignAsync(replica)).Status == HttpStatusCode.OK, TimeSpan.FromSeconds(10), "the replica to issue once Consul answers");
    }

    [Fact]
    public async Task Once_Consul_answers_again_the_replica_signs_within_a_check_not_after_its_blocking_query_has_waited()
    {
        // A 5-second wait and a 10-second bound: after the outage the blocking query's next request waits out its 5 s (nothing
        // changed); the replica confirms its lists without blocking instead.
        await using var consul = await ConsulDouble.StartAsync();
        var settings = Settings(consul);
        settings["ControlPlane:Consul:Wait"] = "00:00:05";
        settings["ControlPlane:Consul:RevocationsMaxStaleness"] = "00:00:10";
        await using var replica = await ControlPlaneHost.StartAsync(settings);
        await Eventually.WaitAsync(async () => (await SignAsync(replica)).Status == HttpStatusCode.OK, TimeSpan.FromSeconds(10), "the replica to read the revocation lists and issue");

        // Consul's servers lost (the agent answers 500) until the replica refuses.
        consul.FaultPathPrefix = "/v1/kv/";
        consul.Fault = ConsulDoubleFault.ServerError;
        await Eventually.WaitAsync(async () => (await SignAsync(replica)).Reason == "revocations-stale", TimeSpan.FromSeconds(15), "the replica to refuse by stale revocation lists");

        consul.Fault = ConsulDoubleFault.None;
        await Eventually.WaitAsync(async () => (await SignAsync(replica)).Status == HttpStatusCode.OK, TimeSpan.FromSeconds(4), "the replica to issue within a few seconds of Consul's return");
    }

    [Theory]
    [InlineData("00:00:01.5000000", "ControlPlane:Consul:RevocationsMaxStaleness is 00:00:01.5000000; use a value from twice ControlPlane:Consul:Wait (00:00:02")]
    [InlineData("2.00:00:00", "ControlPlane:Consul:RevocationsMaxStaleness is 2.00:00:00")]
    public async Task A_bound_shorter_than_twice_the_wait_or_over_a_day_stops_the_control_service_naming_the_key(string value, string expected)
    {
        using var data = new TempDirectory("cp-staleness-settings");
        var error = await Assert.ThrowsAnyAsync<Exception>(() => ControlPlaneHost.StartAsync(
            new Dictionary<string, string?> { ["ControlPlane:Consul:Wait"] = "00:00:01", ["ControlPlane:Consul:RevocationsMaxStaleness"] = value },
            data.Path));

        Assert.True(error.Message.Contains(expected, StringComparison.Ordinal), error.Message);
    }

    [Fact]
    public async Task Unset_the_bound_is_ten_minutes_or_twice_a_longer_wait()
    {
        await using var consul = await ConsulDouble.StartAsync();
        var settings = Settings(consul);
        settings.Remove("ControlPlane:Consul:RevocationsMaxStaleness");
        settings["ControlPlane:Consul:Wait"] = "00:06:00";
        await using var longWait = await ControlPlaneHost.StartAsync(settings);
        Assert.Equal(TimeSpan.FromMinutes(12), longWait.Services.GetRequiredService<IdentityRevocations>().MaxStaleness);

        settings["ControlPlane:Consul:Wait"] = "00:00:01";
        await using var shortWait = await ControlPlaneHost.StartAsync(settings);
        Assert.Equal(TimeSpan.FromMinutes(10), shortWait.Services.GetRequiredService<JoinTokenRegistry>().MaxStaleness);
    }

    private static Dictionary<string, string?> Settings(ConsulDouble consul) => new()
    {
        ["ControlPlane:Consul:Address"] = consul.Address.ToString(),
        ["ControlPlane:Consul:Wait"] = "00:00:01",
        ["ControlPlane:Consul:RevocationsMaxStaleness"] = MaxStaleness.ToString(),
        ["ControlPlane:JoinTokens:tests:Token"] = Token,
        ["ControlPlane:JoinTokens:tests:Services:0"] = "orders",
    };

    private static async Task<(HttpStatusCode Status, string? Reason, string Detail, string? Chain)> SignAsync(ControlPlaneHost control, ECDsa? key = null)
    {
        using var client = control.CreateClient(bearer: Token);
        using var fresh = key is null ? ECDsa.Create(ECCurve.NamedCurves.nistP256) : null;
        var csr = CertificateSigningRequests.Create(key ?? fresh!, Orders);
        using var response = await client.PostAsJsonAsync("v1/identity/sign", new { csr }, Ct);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        if (response.IsSuccessStatusCode)
        {
            return (response.StatusCode, null, string.Empty, body.GetProperty("certificateChain").GetString());
        }

        return (response.StatusCode,
            body.TryGetProperty("reason", out var reason) ? reason.GetString() : null,
            body.TryGetProperty("detail", out var detail) ? detail.GetString() ?? string.Empty : string.Empty,
            null);
    }
}
