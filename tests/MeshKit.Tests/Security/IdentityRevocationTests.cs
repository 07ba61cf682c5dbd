using System.Net;
using System.Net.Http.Json;
using System.Net.Security;
using System.Text.Json;
using MeshKit.Identity;
using MeshKit.Testing;
using MeshKit.Tests.Identity;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Tests.Security;

/// <summary>What an identity revocation does to the revoked workload's peers.</summary>
[Trait("Area", "Security")]
public sealed class IdentityRevocationTests
{
    [Fact]
    public async Task Peers_refuse_a_revoked_identity_at_the_handshake_and_on_connections_it_opened_before()
    {
        // 60 s certificates: the revoked workload's certificate stays otherwise valid for the whole test, as a stolen one would.
        var settings = MeshTestBed.TokenSettings();
        settings["ControlPlane:CertificateLifetime"] = "00:01:00";
        await using var control = await ControlPlaneHost.StartAsync(settings);
        await using var orders = await MeshAppHost.StartAsync(control, "orders", MeshTestBed.Token, map: app => app.MapGet("/api/orders", () => "orders"));
        await using var inventory = await MeshAppHost.StartAsync(control, "inventory", MeshTestBed.Token, meshEndpoint: false);
        var stolen = inventory.Services.GetRequiredService<WorkloadIdentitySource>().GetValid().Certificate;

        // A client that ignores the control channel and keeps using the certificate: one HTTP/2 connection, kept open.
        var connections = 0;
        using var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                ClientCertificates = [stolen],
                RemoteCertificateValidationCallback = (_, _, _, _) => true,
            },
            ConnectCallback = async (context, token) =>
            {
                Interlocked.Increment(ref connections);
                var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
                await socket.ConnectAsync(orders.MeshEndPoint, token);
                return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
            },
        };
        using var client = new HttpClient(handler) { BaseAddress = new Uri("https://orders/"), DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        Assert.Equal("orders", await client.GetStringAsync("/api/orders", TestContext.Current.CancellationToken));

        using (var admin = control.CreateAdminClient())
        {
            using var revoke = await admin.PostAsJsonAsync("v1/identities/revoke", new { spiffeId = SpiffeIdOf(inventory), reason = "key leaked" }, TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        }

        var ordersIdentity = orders.Services.GetRequiredService<WorkloadIdentitySource>();
        await Eventually.WaitAsync(() => ordersIdentity.IsRevokedPeer(SpiffeIdOf(inventory)), TimeSpan.FromSeconds(10), "orders to learn of the revocation");

        // On the connection opened before: refused, and the connection is closed.
        using (var refused = await client.GetAsync("/api/orders", TestContext.Current.CancellationToken))
        {
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
            Assert.Equal("caller_revoked", (await refused.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("reason").GetString());
        }

        // A new connection: refused at the handshake (with TLS 1.3 the client sees it on its first read).
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => client.GetStringAsync("/api/orders", TestContext.Current.CancellationToken));
        Assert.True(connections >= 2, $"expected a new connection after the old one was closed, saw {connections}");
        Assert.True(orders.Metrics.Sum("mesh.server.handshake.refusals", "mesh.reason", "revoked") >= 1);
        Assert.Contains(orders.Logs.Entries, e => e.EventId.Id == 5003);
        Assert.Contains(orders.Logs.Entries, e => e.EventId.Id == 5001 && e.Message.Contains("revoked", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_revoked_workload_says_it_holds_no_certificate_while_it_retries()
    {
        var settings = MeshTestBed.TokenSettings();
        settings["ControlPlane:CertificateLifetime"] = "00:00:04";
        await using var control = await ControlPlaneHost.StartAsync(settings);
        await using var inventory = await MeshAppHost.StartAsync(control, "inventory", MeshTestBed.Token, meshEndpoint: false);

        using (var admin = control.CreateAdminClient())
        {
            using var revoke = await admin.PostAsJsonAsync("v1/identities/revoke", new { spiffeId = SpiffeIdOf(inventory), reason = "key leaked" }, TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        }

        // Its renewals are refused (identity-revoked) and it holds no certificate: the retries say so, not "valid until 0001-01-01".
        await Eventually.WaitAsync(() => inventory.Logs.Entries.Any(e => e.EventId.Id == 2007), TimeSpan.FromSeconds(10), "the revoked workload to log that it holds no certificate");
        Assert.Contains(inventory.Logs.Entries, e => e.EventId.Id == 2007 && e.Message.Contains("identity-revoked", StringComparison.Ordinal));
        Assert.DoesNotContain(inventory.Logs.Entries, e => e.Message.Contains("0001-01-01", StringComparison.Ordinal));
    }

    private static string SpiffeIdOf(MeshAppHost host) =>
        $"spiffe://{ControlPlaneHost.TrustDomain}/ns/default/svc/{host.Service}";
}
