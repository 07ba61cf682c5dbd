using System.Net;
using System.Net.Http.Json;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using MeshKit.Identity;
using MeshKit.Testing;
using MeshKit.Tests.Identity;
using MeshKit.Tests.Traffic;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Tests.Authorization;

[Trait("Area", "Authorization")]
public sealed class AuthorizationTests(MeshTestBed bed) : IClassFixture<MeshTestBed>
{
    internal static readonly Dictionary<string, string?> OrdersRules = new()
    {
        ["Mesh:Authorization:DefaultAction"] = "Deny",
        ["Mesh:Authorization:Rules:0:Name"] = "no-admin",
        ["Mesh:Authorization:Rules:0:Action"] = "Deny",
        ["Mesh:Authorization:Rules:0:To:Paths:0"] = "/api/admin/*",
        ["Mesh:Authorization:Rules:1:Name"] = "frontend-reads-orders",
        ["Mesh:Authorization:Rules:1:From:Services:0"] = "frontend",
        ["Mesh:Authorization:Rules:1:To:Paths:0"] = "/api/*",
        ["Mesh:Authorization:Rules:1:To:Methods:0"] = "GET",
        ["Mesh:Authorization:Rules:2:Name"] = "probes",
        ["Mesh:Authorization:Rules:2:From:Public"] = "true",
        ["Mesh:Authorization:Rules:2:To:Paths:0"] = "/healthz",
    };

    internal static void MapOrders(WebApplication app)
    {
        app.MapGet("/api/orders", () => "orders");
        app.MapGet("/api/admin/secret", () => "secret-data");
        app.MapGet("/healthz", () => "ok");
    }

    [Fact]
    public async Task An_allowed_caller_gets_200_and_others_get_403_with_the_reason()
    {
        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token, settings: OrdersRules, map: MapOrders);
        await using var frontend = await StartCaller(orders, "frontend");
        await using var inventory = await StartCaller(orders, "inventory");

        Assert.Equal("orders", await frontend.Client("orders").GetStringAsync("/api/orders", TestContext.Current.CancellationToken));

        using var denied = await inventory.Client("orders").GetAsync("/api/orders", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Forbidden, denied.StatusCode);
        Assert.Equal("application/problem+json", denied.Content.Headers.ContentType?.MediaType);
        var problem = await denied.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal("mesh_authorization_denied", problem.GetProperty("reason").GetString());
        Assert.Contains("svc/inventory", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Contains("default action is Deny", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);

        // A denied method, a denied rule, and the public endpoint.
        using var post = await frontend.Client("orders").PostAsync("/api/orders", null, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Forbidden, post.StatusCode);
        using var admin = await frontend.Client("orders").GetAsync("/api/admin/secret", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Forbidden, admin.StatusCode);
        Assert.Contains("'no-admin'", (await admin.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("detail").GetString(), StringComparison.Ordinal);

        using var browser = new HttpClient { BaseAddress = orders.PublicAddress };
        Assert.Equal("ok", await browser.GetStringAsync("/healthz", TestContext.Current.CancellationToken));
        using var publicDenied = await browser.GetAsync("/api/orders", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Forbidden, publicDenied.StatusCode);

        // Logged without secrets, counted by deciding rule.
        Assert.Contains(orders.Logs.Entries, e => e.EventId.Id == 7001 && e.Message.Contains("svc/inventory", StringComparison.Ordinal));
        Assert.True(orders.Metrics.Sum("mesh.server.authorization.denials", "mesh.authorization.rule", "no-admin") >= 1);
        Assert.True(orders.Metrics.Sum("mesh.server.authorization.denials", "mesh.authorization.rule", "default") >= 2);
        Assert.DoesNotContain(MeshTestBed.Token, orders.Logs.AllText, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/api/admin%2Fsecret", false)]
    [InlineData("/api/orders/../admin/secret", true)]
    [InlineData("/api/orders/%2e%2e/admin/secret", true)]
    [InlineData("/API/ADMIN/SECRET", true)]
    [InlineData("/Api/Admin/Secret", true)]
    [InlineData("//api/admin/secret", false)]
    [InlineData("/api//admin/secret", false)]
    [InlineData("/api/admin/secret/", true)]
    [InlineData("/api/./admin/secret", true)]
    public async Task Path_tricks_do_not_reach_a_denied_endpoint(string path, bool routesToTheEndpoint)
    {
        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token, settings: OrdersRules, map: MapOrders);

        // A raw HTTP/1.1 request over mTLS as frontend, so the path is sent exactly as written (HttpClient would tidy it).
        using var certificate = await MutualTlsTests.IssueAsync(bed, "frontend", expired: false);

        // The same raw client reaches an allowed endpoint, so a refusal below is the rule's doing.
        var (allowedStatus, allowedBody) = await RawGetAsync(orders.MeshEndPoint, certificate, "/api/orders", bed.ControlPlane.TrustBundle);
        Assert.Equal(200, allowedStatus);
        Assert.Contains("\r\norders\r\n", allowedBody, StringComparison.Ordinal);

        var (status, body) = await RawGetAsync(orders.MeshEndPoint, certificate, path, bed.ControlPlane.TrustBundle);

        Assert.DoesNotContain("secret-data", body, StringComparison.Ordinal);
        if (routesToTheEndpoint)
        {
            // Kestrel and routing turn this into the admin endpoint; the rule on its template refuses it.
            Assert.True(status == 403, $"{path} answered {status}: {body}");
        }
        else
        {
            Assert.True(status is 403 or 404 or 400, $"{path} answered {status}: {body}");
        }
    }

    [Fact]
    public async Task A_rate_limited_caller_gets_429_with_Retry_After()
    {
        var settings = new Dictionary<string, string?>
        {
            ["Mesh:Authorization:Rules:0:Name"] = "frontend-limited",
            ["Mesh:Authorization:Rules:0:From:Services:0"] = "frontend",
            // One permit every 5 s after the burst, so a slow machine cannot see a fourth permit within the six calls.
            ["Mesh:Authorization:Rules:0:RateLimit:PermitsPerSecond"] = "0.2",
            ["Mesh:Authorization:Rules:0:RateLimit:Burst"] = "3",
        };
        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token, settings: settings, map: MapOrders);
        await using var frontend = await StartCaller(orders, "frontend", new Dictionary<string, string?> { ["Mesh:Policy:Defaults:Retry:MaxRetries"] = "0" });

        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? limited = null;
        for (var i = 0; i < 6; i++)
        {
            var response = await frontend.Client("orders").GetAsync("/api/orders", TestContext.Current.CancellationToken);
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                limited ??= response;
            }
            else
            {
                response.Dispose();
            }
        }

        Assert.Equal(3, statuses.Count(s => s == HttpStatusCode.OK));
        Assert.NotNull(limited);
        Assert.True(limited.Headers.RetryAfter is not null);
        var problem = await limited.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal("mesh_rate_limited", problem.GetProperty("reason").GetString());
        limited.Dispose();
        Assert.True(orders.Metrics.Sum("mesh.server.rate_limited", "mesh.authorization.rule", "frontend-limited") >= 3);
        orders.Metrics.Collect();
        Assert.Equal(1, orders.Metrics.Points.Last(p => p.Instrument == "mesh.server.rate_limit.callers" && Equals(p.Tags["mesh.authorization.rule"], "frontend-limited")).Value);
    }

    [Fact]
    public async Task A_caller_without_a_mesh_identity_is_rate_limited_by_its_address_on_the_public_endpoint()
    {
        var settings = new Dictionary<string, string?>
        {
            ["Mesh:Authorization:Rules:0:Name"] = "public-limited",
            ["Mesh:Authorization:Rules:0:From:Public"] = "true",
            ["Mesh:Authorization:Rules:0:RateLimit:PermitsPerSecond"] = "0.2",
            ["Mesh:Authorization:Rules:0:RateLimit:Burst"] = "2",
        };
        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token, settings: settings, map: MapOrders);

        // Two clients, two connections, one address: the bucket belongs to the address, not to the connection.
        using var first = new HttpClient { BaseAddress = orders.PublicAddress };
        using var second = new HttpClient { BaseAddress = orders.PublicAddress };
        var statuses = new List<HttpStatusCode>();
        foreach (var client in new[] { first, second, first, second })
        {
            using var response = await client.GetAsync("/api/orders", TestContext.Current.CancellationToken);
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                var problem = await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
                Assert.Equal("mesh_rate_limited", problem.GetProperty("reason").GetString());
                Assert.Contains("127.0.0.1", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
            }
        }

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests], statuses);
    }

    [Fact]
    public async Task Invalid_authorization_rules_fail_at_start_naming_their_keys()
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token, settings: new Dictionary<string, string?>
        {
            ["Mesh:Authorization:Rules:0:From:Services:0"] = "Not A Service",
            ["Mesh:Authorization:Rules:0:To:Paths:0"] = "api",
            ["Mesh:Authorization:Rules:0:Action"] = "Maybe",
            ["Mesh:Authorization:Rulez:0"] = "x",
        }));
        var text = error.ToString();
        Assert.Contains("Mesh:Authorization:Rules:0:From:Services:0", text, StringComparison.Ordinal);
        Assert.Contains("Mesh:Authorization:Rules:0:To:Paths:0", text, StringComparison.Ordinal);
        Assert.Contains("Mesh:Authorization:Rules:0:Action", text, StringComparison.Ordinal);
        Assert.Contains("Mesh:Authorization:Rulez", text, StringComparison.Ordinal);
    }

    private Task<MeshAppHost> StartCaller(MeshAppHost orders, string service, Dictionary<string, string?>? more = null)
    {
        var settings = new Dictionary<string, string?>(orders.AsStaticEndpoint("orders"));
        foreach (var (k, v) in more ?? [])
        {
            settings[k] = v;
        }

        return MeshAppHost.StartAsync(bed.ControlPlane, service, MeshTestBed.Token, settings: settings, meshEndpoint: false,
            configureServices: s => s.AddMeshClient("orders"));
    }

    internal static async Task<(int Status, string Body)> RawGetAsync(IPEndPoint endpoint, X509Certificate2 certificate, string path, TrustBundle bundle)
    {
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(endpoint);
        await using var tls = new SslStream(tcp.GetStream());
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "orders",
            ClientCertificates = [certificate],
            ApplicationProtocols = [SslApplicationProtocol.Http11],
            RemoteCertificateValidationCallback = (_, c, _, _) => SvidValidator.Validate(c as X509Certificate2, null, bundle, ControlPlaneHost.TrustDomain, DateTimeOffset.UtcNow).IsValid,
        });
        await tls.WriteAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n"));
        using var reader = new StreamReader(tls, Encoding.UTF8);
        var text = await reader.ReadToEndAsync();
        var status = int.Parse(text.Split(' ', 3)[1], System.Globalization.CultureInfo.InvariantCulture);
        return (status, text);
    }
}
