using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using MeshKit.Identity;
using MeshKit.Testing;
using MeshKit.Tests.Identity;
using MeshKit.Tests.Traffic;

namespace MeshKit.Tests.Security;

[Trait("Area", "Security")]
public sealed class HostileInputTests(MeshTestBed bed) : IClassFixture<MeshTestBed>
{
    [Fact]
    public async Task A_CSR_with_a_huge_SAN_list_is_a_clear_400()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName(string.Empty), key, HashAlgorithmName.SHA256);
        var writer = new System.Formats.Asn1.AsnWriter(System.Formats.Asn1.AsnEncodingRules.DER);
        using (writer.PushSequence())
        {
            for (var i = 0; i < 500; i++)
            {
                writer.WriteCharacterString(System.Formats.Asn1.UniversalTagNumber.IA5String, $"spiffe://{ControlPlaneHost.TrustDomain}/ns/default/svc/s{i}", new System.Formats.Asn1.Asn1Tag(System.Formats.Asn1.TagClass.ContextSpecific, 6));
            }
        }

        request.CertificateExtensions.Add(new X509Extension("2.5.29.17", writer.Encode(), true));
        using var client = bed.ControlPlane.CreateClient(bearer: MeshTestBed.Token);
        using var response = await client.PostAsJsonAsync("v1/identity/sign", new { csr = request.CreateSigningRequestPem() }, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal("csr-san-malformed", problem.GetProperty("reason").GetString());
    }

    [Fact]
    public async Task The_control_channel_and_admin_API_refuse_unauthenticated_and_foreign_callers()
    {
        var cp = bed.ControlPlane;
        using var anonymous = cp.CreateClient();
        using var wrongToken = cp.CreateClient(bearer: MeshTestBed.Token);
        using var foreignCa = TestCertificates.CreateRootCa("Foreign");
        using var foreignCert = TestCertificates.CreateSvid(foreignCa, $"spiffe://{ControlPlaneHost.TrustDomain}/ns/default/svc/frontend");
        using var foreign = cp.CreateClient(clientCertificate: foreignCert);

        foreach (var client in new[] { anonymous, foreign })
        {
            using var watch = await client.GetAsync("v1/workloads/self/watch?index=0&wait=1s", TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.Unauthorized, watch.StatusCode);
        }

        string[] adminGets = ["v1/workloads", "v1/tokens", "v1/ca/roots", "v1/policy", "v1/policy/orders", "v1/identities/revoked"];
        foreach (var path in adminGets)
        {
            foreach (var client in new[] { anonymous, wrongToken, foreign })
            {
                using var response = await client.GetAsync(path, TestContext.Current.CancellationToken);
                Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"GET {path} answered {response.StatusCode}");
            }
        }

        using var revoke = await wrongToken.PostAsync("v1/tokens/tests/revoke", null, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Unauthorized, revoke.StatusCode);
        using var addRoot = await anonymous.PostAsync("v1/ca/roots", null, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Unauthorized, addRoot.StatusCode);
        using var content = new StringContent("{}", Encoding.UTF8, "application/json");
        using var put = await wrongToken.PutAsync("v1/policy/orders", content, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Unauthorized, put.StatusCode);
    }

    [Fact]
    public async Task A_watch_connection_authenticated_before_its_root_was_removed_is_refused_on_its_next_poll()
    {
        // The watch validates a connection's certificate once per bundle version; removing a root must not leave a
        // kept-alive connection from that root authenticated.
        await using var cp = await ControlPlaneHost.StartAsync(new Dictionary<string, string?>
        {
            ["ControlPlane:JoinTokens:tests:Token"] = MeshTestBed.Token,
            ["ControlPlane:JoinTokens:tests:Services:0"] = "inventory",
        });
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var signer = cp.CreateClient(bearer: MeshTestBed.Token);
        using var signed = await signer.PostAsJsonAsync("v1/identity/sign", new { csr = CertificateSigningRequests.Create(key, SpiffeId.Create(ControlPlaneHost.TrustDomain, "default", "inventory")) }, TestContext.Current.CancellationToken);
        var chain = (await signed.EnsureSuccessStatusCode().Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("certificateChain").GetString()!;
        using var leaf = X509Certificate2.CreateFromPem(chain);
        using var certificate = TestCertificates.ForTls(leaf.CopyWithPrivateKey(key));
        using var watcher = cp.CreateClient(clientCertificate: certificate);

        for (var poll = 0; poll < 2; poll++)
        {
            using var ok = await watcher.GetAsync("v1/workloads/self/watch?index=0&wait=0s", TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        using var admin = cp.CreateAdminClient();
        var added = await (await admin.PostAsync("v1/ca/roots", null, TestContext.Current.CancellationToken)).EnsureSuccessStatusCode().Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        var roots = added.GetProperty("roots").EnumerateArray().ToList();
        var oldRoot = roots.Single(r => r.GetProperty("active").GetBoolean()).GetProperty("id").GetString();
        var newRoot = roots.Single(r => !r.GetProperty("active").GetBoolean()).GetProperty("id").GetString();
        (await admin.PostAsync($"v1/ca/roots/{newRoot}/activate", null, TestContext.Current.CancellationToken)).EnsureSuccessStatusCode();
        (await admin.DeleteAsync($"v1/ca/roots/{oldRoot}", TestContext.Current.CancellationToken)).EnsureSuccessStatusCode();

        using var refused = await watcher.GetAsync("v1/workloads/self/watch?index=0&wait=0s", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
    }

    [Fact]
    public async Task A_workload_gets_its_own_central_policy_on_the_control_channel_and_never_another_services()
    {
        using var admin = bed.ControlPlane.CreateAdminClient();
        using var secret = new StringContent("""{ "Authorization": { "Rules": [ { "Name": "frontend-only-secret", "From": { "Services": [ "frontend" ] } } ] } }""", Encoding.UTF8, "application/json");
        (await admin.PutAsync("v1/policy/frontend", secret, TestContext.Current.CancellationToken)).EnsureSuccessStatusCode();

        using var inventoryCert = await MutualTlsTests.IssueAsync(bed, "inventory", expired: false);
        using var asInventory = bed.ControlPlane.CreateClient(clientCertificate: inventoryCert);
        var answer = await asInventory.GetFromJsonAsync<JsonElement>("v1/workloads/self/watch?index=0&wait=1s", TestContext.Current.CancellationToken);
        Assert.DoesNotContain("frontend-only-secret", answer.GetRawText(), StringComparison.Ordinal);

        using var frontendCert = await MutualTlsTests.IssueAsync(bed, "frontend", expired: false);
        using var asFrontend = bed.ControlPlane.CreateClient(clientCertificate: frontendCert);
        var own = await asFrontend.GetFromJsonAsync<JsonElement>("v1/workloads/self/watch?index=0&wait=1s", TestContext.Current.CancellationToken);
        Assert.Contains("frontend-only-secret", own.GetRawText(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("..%2F..%2Fescape")]
    [InlineData("%2E%2E")]
    [InlineData("a..b")]
    [InlineData("orders%2Fx")]
    public async Task Policy_service_names_that_try_path_traversal_are_refused_and_write_nothing_outside(string service)
    {
        using var admin = bed.ControlPlane.CreateAdminClient();
        using var content = new StringContent("""{ "Policy": { "Defaults": { "Timeout": "00:00:05" } } }""", Encoding.UTF8, "application/json");
        using var response = await admin.PutAsync($"v1/policy/{service}", content, TestContext.Current.CancellationToken);
        Assert.True(response.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.NotFound, $"{service} answered {response.StatusCode}");
        Assert.Empty(Directory.EnumerateFiles(bed.ControlPlane.DataDirectory, "escape*", SearchOption.AllDirectories));
        Assert.False(File.Exists(Path.Combine(Path.GetDirectoryName(bed.ControlPlane.DataDirectory)!, "escape.json")));
    }

    [Fact]
    public async Task Settings_that_name_files_outside_what_they_should_hold_fail_with_errors_naming_the_setting()
    {
        // The workload's trust bundle pointing somewhere that is not PEM roots.
        var workload = await Assert.ThrowsAsync<MeshIdentityException>(() => MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token,
            settings: new Dictionary<string, string?> { ["Mesh:ControlPlane:TrustBundlePath"] = "../../../../../../../../etc/hostname" }));
        Assert.Contains("Mesh:ControlPlane:TrustBundlePath", workload.Message, StringComparison.Ordinal);

        // The control service's CA files pointing at things that are not a CA.
        var controlPlane = await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await using var host = await ControlPlaneHost.StartAsync(new Dictionary<string, string?>
            {
                ["ControlPlane:Ca:CertificatePath"] = "../../../../../../../../etc/hostname",
                ["ControlPlane:Ca:KeyPath"] = "/etc/../etc/hostname",
            });
        });
        Assert.Contains("ControlPlane:Ca:", controlPlane.ToString(), StringComparison.Ordinal);
        Assert.IsType<InvalidDataException>(controlPlane.GetBaseException());
    }

    [Fact]
    [Trait("Area", "Chaos")]
    public async Task A_handshake_flood_on_the_mesh_port_stays_bounded_and_mesh_calls_recover()
    {
        await using var orders = await Upstream.StartAsync(bed, "orders", "v1");
        const int MaxConnections = 20;
        const int Flood = 60;
        await using var target = await MeshAppHost.StartAsync(bed.ControlPlane, "inventory", MeshTestBed.Token, settings: new Dictionary<string, string?>
        {
            ["Mesh:Endpoint:MaxConnections"] = MaxConnections.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Mesh:Endpoint:HandshakeTimeout"] = "00:00:01",
        }, map: app => Microsoft.AspNetCore.Builder.EndpointRouteBuilderExtensions.MapGet(app, "/", () => "alive"));

        // 60 connections that never say hello (a flood, or slow clients): the first 20 are held until the handshake timeout,
        // the rest are closed at once.
        var sockets = new List<TcpClient>();
        try
        {
            var refusedAtConnect = 0;
            for (var i = 0; i < Flood; i++)
            {
                var socket = new TcpClient();
                try
                {
                    await socket.ConnectAsync(target.MeshEndPoint, TestContext.Current.CancellationToken);
                    sockets.Add(socket);
                }
                catch (SocketException)
                {
                    // Closed by the server before the connect even completed on our side: refused, as it should be.
                    refusedAtConnect++;
                    socket.Dispose();
                }
            }

            // The kernel completes connects before the server sees them, so refusals show up as closed sockets, not failed
            // connects; a connect may only fail for a connection beyond the limit.
            Assert.InRange(refusedAtConnect, 0, Flood - MaxConnections);

            await Eventually.WaitAsync(() => target.Metrics.Sum("mesh.server.connections.rejected") >= Flood - MaxConnections, TimeSpan.FromSeconds(10), "the excess connections to be refused");

            // Every connection is closed by the server within the handshake timeout: a read sees the end of the stream.
            var closed = await Task.WhenAll(sockets.Select(async s =>
            {
                try
                {
                    using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                    var buffer = new byte[1];
                    return await s.GetStream().ReadAsync(buffer, deadline.Token) == 0;
                }
                catch (IOException)
                {
                    return true;
                }
            }));
            Assert.All(closed, Assert.True);

            // Exactly the connections beyond the limit were refused: the limit held, and none within it was refused (the
            // held ones were closed by the handshake timeout, which does not count as a refusal).
            Assert.Equal(Flood - MaxConnections, target.Metrics.Sum("mesh.server.connections.rejected"));
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
        }

        // The endpoint serves mesh calls again once the flood is gone.
        await using var caller = await MeshAppHost.StartAsync(bed.ControlPlane, "frontend", MeshTestBed.Token, meshEndpoint: false,
            settings: new Dictionary<string, string?>(target.AsStaticEndpoint("inventory")),
            configureServices: s => Microsoft.Extensions.DependencyInjection.MeshHttpClientBuilderExtensions.AddMeshClient(s, "inventory"));
        Assert.Equal("alive", await caller.Client("inventory").GetStringAsync("/", TestContext.Current.CancellationToken));
    }
}
