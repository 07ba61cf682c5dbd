using System.Net;
using System.Net.Http.Json;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using MeshKit.Identity;
using MeshKit.Server;
using MeshKit.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace MeshKit.Tests.Identity;

[Trait("Area", "Identity")]
public sealed class ExpiredConnectionTests
{
    [Fact]
    public async Task A_request_on_a_connection_whose_client_certificate_expired_gets_421_and_the_connection_is_closed()
    {
        // A control service whose CA is a test root the test holds the key of: the server gets a 60 s certificate from it,
        // and the test signs the client a 3 s one, so only the caller's certificate expires on the connection.
        using var directory = new TempDirectory("expired-connection");
        using var root = TestCertificates.CreateRootCa("Expired Connection Test Root");
        var certificatePath = Path.Combine(directory.Path, "ca.pem");
        var keyPath = Path.Combine(directory.Path, "ca.key");
        await File.WriteAllTextAsync(certificatePath, root.ExportCertificatePem(), TestContext.Current.CancellationToken);
        await File.WriteAllTextAsync(keyPath, root.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem(), TestContext.Current.CancellationToken);
        await using var controlPlane = await ControlPlaneHost.StartAsync(new Dictionary<string, string?>
        {
            ["ControlPlane:Ca:CertificatePath"] = certificatePath,
            ["ControlPlane:Ca:KeyPath"] = keyPath,
            ["ControlPlane:CertificateLifetime"] = "00:01:00",
            ["ControlPlane:JoinTokens:tests:Token"] = MeshTestBed.Token,
            ["ControlPlane:JoinTokens:tests:Services:0"] = "orders",
        });

        var served = 0;
        await using var orders = await MeshAppHost.StartAsync(controlPlane, "orders", MeshTestBed.Token, map: app =>
            app.MapGet("/serial", (HttpContext http) =>
            {
                Interlocked.Increment(ref served);
                return Convert.ToHexString(http.Features.Get<MeshConnection>()!.Certificate.GetSerialNumber());
            }));

        var frontend = $"spiffe://{ControlPlaneHost.TrustDomain}/ns/default/svc/frontend";
        using var shortLived = TestCertificates.CreateSvid(root, frontend, notAfter: DateTimeOffset.UtcNow.AddSeconds(3));
        using var renewed = TestCertificates.CreateSvid(root, frontend);
        var current = shortLived;
        var connections = 0;
        var bundle = controlPlane.TrustBundle;
        using var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                TargetHost = "orders",
                RemoteCertificateValidationCallback = (_, c, _, _) =>
                    SvidValidator.Validate(c as X509Certificate2, null, bundle, ControlPlaneHost.TrustDomain, DateTimeOffset.UtcNow, SvidUsage.Server).IsValid,
                LocalCertificateSelectionCallback = (_, _, _, _, _) => Volatile.Read(ref current),
            },

            // Counts the connections the pool opens: a request on a new connection means the old one is gone.
            ConnectCallback = async (context, cancellationToken) =>
            {
                Interlocked.Increment(ref connections);
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        using var client = new HttpClient(handler)
        {
            BaseAddress = new Uri($"https://127.0.0.1:{orders.MeshEndPoint.Port}/"),
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        var shortLivedSerial = Convert.ToHexString(shortLived.GetSerialNumber());

        // One HTTP/2 connection, authenticated with the short-lived certificate.
        Assert.Equal(shortLivedSerial, await client.GetStringAsync("serial", TestContext.Current.CancellationToken));
        Assert.Equal(1, connections);

        // Keep that connection open until its client certificate has expired.
        var notAfter = shortLived.NotAfter.ToUniversalTime();
        await Eventually.WaitAsync(() => DateTime.UtcNow > notAfter.AddMilliseconds(50), TimeSpan.FromSeconds(10), "the client certificate to expire", TimeSpan.FromMilliseconds(50));
        Volatile.Write(ref current, renewed);

        // The next request on it is refused with 421, unserved, and the server closes the connection (GOAWAY).
        using var refused = await client.GetAsync("serial", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.MisdirectedRequest, refused.StatusCode);
        Assert.Equal(HttpVersion.Version20, refused.Version);
        var problem = await refused.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal("connection_certificate_expired", problem.GetProperty("reason").GetString());
        Assert.Contains("the caller's certificate", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(1, served);
        Assert.Equal(1, connections);

        // So the request after it goes out on a new connection, with the renewed certificate.
        Assert.Equal(Convert.ToHexString(renewed.GetSerialNumber()), await client.GetStringAsync("serial", TestContext.Current.CancellationToken));
        Assert.Equal(2, connections);
        Assert.Equal(2, served);

        Assert.Equal(1, orders.Metrics.Sum("mesh.server.expired_connection.closes"));
        Assert.Contains(orders.Logs.Entries, e => e.EventId.Id == 5002 && e.Message.Contains("svc/frontend", StringComparison.Ordinal) && e.Message.Contains("the caller's", StringComparison.Ordinal));
    }
}
