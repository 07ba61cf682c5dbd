using System.Net;
using System.Net.Http.Json;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using MeshKit.Identity;
using MeshKit.Server;
using MeshKit.Testing;
using MeshKit.Transport;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Tests.Identity;

[Trait("Area", "Identity")]
public sealed class MutualTlsTests(MeshTestBed bed) : IClassFixture<MeshTestBed>
{
    private static void MapWhoAmI(WebApplication app) =>
        app.MapGet("/whoami", (HttpContext http) =>
        {
            var peer = http.Features.Get<IMeshPeerFeature>();
            return Results.Json(new
            {
                caller = peer?.SpiffeId.Value,
                protocol = http.Request.Protocol,
                user = http.User.Identity?.IsAuthenticated ?? false,
            });
        });

    [Fact]
    public async Task Two_mesh_services_call_each_other_over_HTTP2_and_the_callee_sees_the_callers_identity()
    {
        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token, map: MapWhoAmI,
            configureServices: s => s.AddMeshClient("frontend"));
        await using var frontend = await MeshAppHost.StartAsync(bed.ControlPlane, "frontend", MeshTestBed.Token,
            settings: new Dictionary<string, string?>(orders.AsStaticEndpoint("orders")),
            configureServices: s => s.AddMeshClient("orders"), map: MapWhoAmI);

        // frontend -> orders
        var client = frontend.Services.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
        var answer = await client.GetFromJsonAsync<JsonElement>("/whoami", TestContext.Current.CancellationToken);
        Assert.Equal($"spiffe://{ControlPlaneHost.TrustDomain}/ns/default/svc/frontend", answer.GetProperty("caller").GetString());
        Assert.Equal("HTTP/2", answer.GetProperty("protocol").GetString());

        // The Mesh scheme is never the default, even as the only scheme: HttpContext.User stays the app's (here, nobody).
        Assert.False(answer.GetProperty("user").GetBoolean());


        // and back: orders -> frontend, once orders knows where frontend is.
        await using var frontendAsCallee = await MeshAppHost.StartAsync(bed.ControlPlane, "frontend", MeshTestBed.Token, map: MapWhoAmI);
        await using var orders2 = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token,
            settings: new Dictionary<string, string?>(frontendAsCallee.AsStaticEndpoint("frontend")),
            configureServices: s => s.AddMeshClient("frontend"));
        var back = orders2.Services.GetRequiredService<IHttpClientFactory>().CreateClient("frontend");
        var backAnswer = await back.GetFromJsonAsync<JsonElement>("/whoami", TestContext.Current.CancellationToken);
        Assert.Equal($"spiffe://{ControlPlaneHost.TrustDomain}/ns/default/svc/orders", backAnswer.GetProperty("caller").GetString());
    }

    [Fact]
    public async Task The_apps_own_principal_is_not_replaced_by_the_mesh_identity()
    {
        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token,
            configureServices: s => s.AddAuthentication().AddScheme<Microsoft.AspNetCore.Authentication.AuthenticationSchemeOptions, EndUserHandler>("EndUser", null),
            map: app => app.MapGet("/me", (HttpContext http) => new
            {
                user = http.User.Identity?.Name,
                caller = http.Features.Get<IMeshPeerFeature>()?.Service,
            }));
        await using var frontend = await MeshAppHost.StartAsync(bed.ControlPlane, "frontend", MeshTestBed.Token, meshEndpoint: false,
            settings: new Dictionary<string, string?>(orders.AsStaticEndpoint("orders")),
            configureServices: s => s.AddMeshClient("orders"));

        var client = frontend.Services.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
        using var request = new HttpRequestMessage(HttpMethod.Get, "/me");
        request.Headers.Add("X-End-User", "alice");
        using var response = await client.SendAsync(request, TestContext.Current.CancellationToken);
        var answer = await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal("alice", answer.GetProperty("user").GetString());
        Assert.Equal("frontend", answer.GetProperty("caller").GetString());
    }

    [Fact]
    public async Task HTTP_1_1_works_when_it_is_forced()
    {
        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token, map: MapWhoAmI);
        var settings = new Dictionary<string, string?>(orders.AsStaticEndpoint("orders")) { ["Mesh:Transport:HttpVersion"] = "1.1" };
        await using var frontend = await MeshAppHost.StartAsync(bed.ControlPlane, "frontend", MeshTestBed.Token, settings: settings,
            configureServices: s => s.AddMeshClient("orders"), meshEndpoint: false);

        var client = frontend.Services.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
        var answer = await client.GetFromJsonAsync<JsonElement>("/whoami", TestContext.Current.CancellationToken);
        Assert.Equal("HTTP/1.1", answer.GetProperty("protocol").GetString());
        Assert.EndsWith("/svc/frontend", answer.GetProperty("caller").GetString(), StringComparison.Ordinal);
    }

    public static TheoryData<string> BadCallers => ["no-certificate", "foreign-ca", "expired", "other-trust-domain"];

    [Theory]
    [MemberData(nameof(BadCallers))]
    public async Task Callers_without_a_valid_mesh_certificate_fail_and_the_server_logs_and_counts_why(string kind)
    {
        var served = 0;
        var bundle = bed.ControlPlane.TrustBundle;

        // The bad certificate first (an expired one takes its 5 s to expire), then the callee, so that the callee's own
        // 5 s certificate is fresh when the caller knocks.
        using var foreignCa = TestCertificates.CreateRootCa("Foreign");
        var (certificate, reason) = kind switch
        {
            "no-certificate" => ((X509Certificate2?)null, "no_certificate"),
            "foreign-ca" => (TestCertificates.CreateSvid(foreignCa, $"spiffe://{ControlPlaneHost.TrustDomain}/ns/default/svc/frontend"), "untrusted_chain"),
            "expired" => (await IssueAsync(bed, "frontend", expired: true), "expired"),
            "other-trust-domain" => (TestCertificates.CreateSvid(foreignCa, "spiffe://other.mesh/ns/default/svc/frontend"), "wrong_trust_domain"),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token,
            map: app => app.MapGet("/", () => { Interlocked.Increment(ref served); return "served"; }));

        using var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                // The caller trusts the server (so only the server's refusal is under test).
                RemoteCertificateValidationCallback = (_, c, _, _) => SvidValidator.Validate(c as X509Certificate2, null, bundle, ControlPlaneHost.TrustDomain, DateTimeOffset.UtcNow).IsValid,
                ClientCertificates = certificate is null ? null : [certificate],
                LocalCertificateSelectionCallback = certificate is null ? null : (_, _, _, _, _) => certificate,
            },
        };
        using var client = new HttpClient(handler);

        // With TLS 1.3 the refusal reaches the client on its first read, so the request (not the connect) fails.
        await Assert.ThrowsAnyAsync<Exception>(() => client.GetStringAsync($"https://127.0.0.1:{orders.MeshEndPoint.Port}/", TestContext.Current.CancellationToken));
        Assert.Equal(0, served);

        await Eventually.WaitAsync(
            () => orders.Metrics.Sum("mesh.server.handshake.refusals", "mesh.reason", reason) >= 1,
            TimeSpan.FromSeconds(5),
            $"a refusal counted as {reason} (the callee logged: {string.Join(" | ", orders.Logs.Entries.Where(e => e.EventId.Id is 5001 or 2003 or 2004).Select(e => e.Message))})");
        Assert.Contains(orders.Logs.Entries, e => e.EventId.Id == 5001 && e.Message.Contains(reason, StringComparison.Ordinal));
        certificate?.Dispose();
    }

    [Fact]
    public async Task A_callee_presenting_a_valid_mesh_certificate_of_another_service_is_refused_by_the_client()
    {
        var reached = 0;
        await using var evil = await MeshAppHost.StartAsync(bed.ControlPlane, "evil", MeshTestBed.Token,
            map: app => app.MapGet("/api/orders", () => { Interlocked.Increment(ref reached); return "stolen"; }));

        // Discovery (which anyone able to register could write) says orders lives where evil listens.
        await using var frontend = await MeshAppHost.StartAsync(bed.ControlPlane, "frontend", MeshTestBed.Token,
            settings: new Dictionary<string, string?>(evil.AsStaticEndpoint("orders")),
            configureServices: s => s.AddMeshClient("orders"), meshEndpoint: false);

        var client = frontend.Services.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
        await Assert.ThrowsAsync<HttpRequestException>(() => client.GetStringAsync("/api/orders", TestContext.Current.CancellationToken));
        Assert.Equal(0, reached);
        // Every attempt (the first and its retries) was refused at the handshake.
        Assert.True(frontend.Metrics.Sum("mesh.client.handshake.refusals", "mesh.reason", "unexpected_identity") >= 1);
        Assert.Contains(frontend.Logs.Entries, e => e.EventId.Id == 4001 && e.Message.Contains("svc/evil", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Calls_to_non_mesh_HTTPS_servers_are_unchanged()
    {
        // A plain HTTPS server outside the mesh, with its own self-signed certificate; it records what it sees.
        using var serverCertificate = CreateSelfSigned("external.test");
        string? seenClientCertificate = "not called";
        string? seenProtocol = null;
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrelHttpsConfiguration();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.UseHttps(serverCertificate, h => h.ClientCertificateMode = Microsoft.AspNetCore.Server.Kestrel.Https.ClientCertificateMode.AllowCertificate)));
        await using var external = builder.Build();
        external.MapGet("/", (HttpContext http) =>
        {
            seenClientCertificate = http.Connection.ClientCertificate?.Subject;
            seenProtocol = http.Request.Protocol;
            return "external";
        });
        await external.StartAsync(TestContext.Current.CancellationToken);
        var port = new Uri(external.Urls.First()).Port;

        await using var frontend = await MeshAppHost.StartAsync(bed.ControlPlane, "frontend", MeshTestBed.Token, meshEndpoint: false,
            configureServices: s => s.AddHttpClient("external").ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
            {
                SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, c, _, _) => c?.Subject == serverCertificate.Subject },
            }));

        var client = frontend.Services.GetRequiredService<IHttpClientFactory>().CreateClient("external");
        Assert.Equal("external", await client.GetStringAsync($"https://127.0.0.1:{port}/", TestContext.Current.CancellationToken));

        // No mesh certificate presented, HTTP/1.1 as HttpClient defaults to: the mesh did not touch this client.
        Assert.Null(seenClientCertificate);
        Assert.Equal("HTTP/1.1", seenProtocol);
    }

    [Fact]
    public async Task The_apps_own_urls_are_served_beside_the_mesh_endpoint_without_Kestrels_overriding_warning()
    {
        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token, map: app => app.MapGet("/public", () => "anyone"));

        using var browser = new HttpClient { BaseAddress = orders.PublicAddress };
        Assert.Equal("anyone", await browser.GetStringAsync("/public", TestContext.Current.CancellationToken));
        Assert.NotEqual(orders.PublicAddress.Port, orders.MeshEndPoint.Port);
        Assert.DoesNotContain(orders.Logs.Entries, e => e.Message.Contains("Overriding address", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_route_that_requires_a_mesh_caller_answers_403_on_a_public_endpoint_and_200_on_the_mesh_endpoint()
    {
        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token, map: app =>
        {
            app.MapGet("/internal", () => "mesh only").RequireMeshCaller();
            app.MapGet("/frontend-only", () => "frontend only").RequireMeshCaller("frontend");
            app.MapGet("/public", () => "anyone");
        });
        await using var frontend = await MeshAppHost.StartAsync(bed.ControlPlane, "frontend", MeshTestBed.Token, meshEndpoint: false,
            settings: new Dictionary<string, string?>(orders.AsStaticEndpoint("orders")),
            configureServices: s => s.AddMeshClient("orders"));
        await using var inventory = await MeshAppHost.StartAsync(bed.ControlPlane, "inventory", MeshTestBed.Token, meshEndpoint: false,
            settings: new Dictionary<string, string?>(orders.AsStaticEndpoint("orders")),
            configureServices: s => s.AddMeshClient("orders"));

        using var browser = new HttpClient { BaseAddress = orders.PublicAddress };
        Assert.Equal("anyone", await browser.GetStringAsync("/public", TestContext.Current.CancellationToken));
        using var refused = await browser.GetAsync("/internal", TestContext.Current.CancellationToken);
        Assert.True(refused.StatusCode == HttpStatusCode.Forbidden, string.Join("\n", orders.Logs.Entries.Where(e => e.Exception is not null).Select(e => e.Exception!.ToString()).Take(2)));
        var problem = await refused.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal("mesh_caller_required", problem.GetProperty("reason").GetString());

        var mesh = frontend.Services.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
        Assert.Equal("mesh only", await mesh.GetStringAsync("/internal", TestContext.Current.CancellationToken));
        Assert.Equal("frontend only", await mesh.GetStringAsync("/frontend-only", TestContext.Current.CancellationToken));

        var other = inventory.Services.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
        using var denied = await other.GetAsync("/frontend-only", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Forbidden, denied.StatusCode);
        var deniedProblem = await denied.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal("mesh_caller_not_allowed", deniedProblem.GetProperty("reason").GetString());
        Assert.Contains("svc/inventory", deniedProblem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Startup_fails_with_an_error_naming_StartupTimeout_when_the_control_service_is_unreachable()
    {
        // A port nobody listens on.
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();

        var error = await Assert.ThrowsAsync<MeshIdentityException>(() => MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token,
            settings: new Dictionary<string, string?>
            {
                ["Mesh:ControlPlane:Address"] = $"https://127.0.0.1:{port}",
                ["Mesh:ControlPlane:StartupTimeout"] = "00:00:01.500",
            }));
        Assert.Contains("Mesh:ControlPlane:StartupTimeout", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Startup_fails_at_once_with_a_clear_error_when_the_token_does_not_grant_the_service()
    {
        var error = await Assert.ThrowsAsync<MeshIdentityException>(() => MeshAppHost.StartAsync(bed.ControlPlane, "payments", MeshTestBed.Token));
        Assert.Contains("not-granted", error.Message, StringComparison.Ordinal);
        Assert.Contains("Mesh:ControlPlane:JoinToken", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invalid_mesh_settings_fail_at_start_with_errors_that_name_their_keys()
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => MeshAppHost.StartAsync(bed.ControlPlane, "Orders_Bad", MeshTestBed.Token,
            settings: new Dictionary<string, string?>
            {
                ["Mesh:Identity:RenewalFraction"] = "1.5",
                ["Mesh:Endpoint:Address"] = "not-an-ip",
                ["Mesh:ControlPlane:Address"] = "http://insecure",
            }));
        var text = error.ToString();
        Assert.Contains("Mesh:Service:Name", text, StringComparison.Ordinal);
        Assert.Contains("Mesh:Identity:RenewalFraction", text, StringComparison.Ordinal);
        Assert.Contains("Mesh:Endpoint:Address", text, StringComparison.Ordinal);
        Assert.Contains("Mesh:ControlPlane:Address", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_mesh_call_to_a_destination_without_endpoints_fails_with_an_error_that_names_it()
    {
        await using var frontend = await MeshAppHost.StartAsync(bed.ControlPlane, "frontend", MeshTestBed.Token, meshEndpoint: false,
            configureServices: s => s.AddMeshClient("inventory"));
        var client = frontend.Services.GetRequiredService<IHttpClientFactory>().CreateClient("inventory");
        var error = await Assert.ThrowsAsync<MeshCallException>(() => client.GetStringAsync("/", TestContext.Current.CancellationToken));
        Assert.Equal("no_endpoints", error.Reason);
        Assert.Contains("Mesh:Discovery:Static:inventory", error.Message, StringComparison.Ordinal);
    }

    internal static async Task<X509Certificate2> IssueAsync(MeshTestBed bed, string service, bool expired)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var client = bed.ControlPlane.CreateClient(bearer: MeshTestBed.Token);
        using var response = await client.PostAsJsonAsync("v1/identity/sign", new { csr = CertificateSigningRequests.Create(key, SpiffeId.Create(ControlPlaneHost.TrustDomain, "default", service)) });
        response.EnsureSuccessStatusCode();
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        var certificate = X509Certificate2.CreateFromPem(body.GetProperty("certificateChain").GetString()!);
        if (expired)
        {
            // Certificates in tests live 5 s: wait for this one to expire.
            await Eventually.WaitAsync(() => DateTime.UtcNow > certificate.NotAfter.ToUniversalTime().AddMilliseconds(200), TimeSpan.FromSeconds(10), "the certificate to expire", TimeSpan.FromMilliseconds(200));
        }

        return TestCertificates.ForTls(certificate.CopyWithPrivateKey(key));
    }

    private static X509Certificate2 CreateSelfSigned(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(name);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        return TestCertificates.ForTls(X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null));
    }

    /// <summary>Stands in for an app's own end-user authentication (JWT, say): the user is named by a header.</summary>
    private sealed class EndUserHandler(
        Microsoft.Extensions.Options.IOptionsMonitor<Microsoft.AspNetCore.Authentication.AuthenticationSchemeOptions> options,
        Microsoft.Extensions.Logging.ILoggerFactory logger,
        System.Text.Encodings.Web.UrlEncoder encoder)
        : Microsoft.AspNetCore.Authentication.AuthenticationHandler<Microsoft.AspNetCore.Authentication.AuthenticationSchemeOptions>(options, logger, encoder)
    {
        protected override Task<Microsoft.AspNetCore.Authentication.AuthenticateResult> HandleAuthenticateAsync()
        {
            var name = Request.Headers["X-End-User"].ToString();
            if (string.IsNullOrEmpty(name))
            {
                return Task.FromResult(Microsoft.AspNetCore.Authentication.AuthenticateResult.NoResult());
            }

            var principal = new System.Security.Claims.ClaimsPrincipal(new System.Security.Claims.ClaimsIdentity([new System.Security.Claims.Claim(System.Security.Claims.ClaimTypes.Name, name)], Scheme.Name));
            return Task.FromResult(Microsoft.AspNetCore.Authentication.AuthenticateResult.Success(new Microsoft.AspNetCore.Authentication.AuthenticationTicket(principal, Scheme.Name)));
        }
    }
}
