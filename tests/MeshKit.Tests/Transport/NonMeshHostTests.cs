using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using MeshKit.Discovery;
using MeshKit.Server;
using MeshKit.Testing;
using MeshKit.Transport;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.ServiceDiscovery;

namespace MeshKit.Tests.Transport;

/// <summary>A control service whose join token grants <c>orders</c> in <c>default</c> and in <c>payments</c>, and <c>frontend</c>.</summary>
public sealed class NamespacesBed : IAsyncLifetime
{
    public const string Token = "mesh-namespaces-join-token-0123456789";

    public ControlPlaneHost ControlPlane { get; private set; } = null!;

    public async ValueTask InitializeAsync() => ControlPlane = await ControlPlaneHost.StartAsync(new Dictionary<string, string?>
    {
        ["ControlPlane:JoinTokens:tests:Token"] = Token,
        ["ControlPlane:JoinTokens:tests:Services:0"] = "orders",
        ["ControlPlane:JoinTokens:tests:Services:1"] = "payments/orders",
        ["ControlPlane:JoinTokens:tests:Services:2"] = "frontend",
    });

    public async ValueTask DisposeAsync() => await ControlPlane.DisposeAsync();
}

/// <summary>
/// Which hosts a mesh client treats as mesh destinations, on real sockets: mesh names stay mesh calls with the identity their
/// name says; every other host never enters mesh discovery and is passed through untouched or refused
/// (<c>Mesh:Client:NonMeshHosts</c>).
/// </summary>
[Trait("Area", "Security")]
public sealed class NonMeshHostTests(NamespacesBed bed) : IClassFixture<NamespacesBed>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Mesh_names_in_the_callers_and_a_declared_namespace_stay_mesh_calls_that_expect_the_identity_their_name_says()
    {
        // orders runs in namespace payments; discovery points both orders.payments and orders at it.
        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", NamespacesBed.Token,
            settings: new Dictionary<string, string?> { ["Mesh:Service:Namespace"] = "payments" },
            map: app => app.MapGet("/whoami", (HttpContext http) => new
            {
                caller = http.Features.Get<IMeshPeerFeature>()?.SpiffeId.Value,
                protocol = http.Request.Protocol,
            }));
        var discovery = new RecordingDiscovery();
        discovery.Answer("orders.payments", orders.MeshEndPoint);
        discovery.Answer("orders", orders.MeshEndPoint);
        await using var frontend = await MeshAppHost.StartAsync(bed.ControlPlane, "frontend", NamespacesBed.Token, meshEndpoint: false,
            settings: new Dictionary<string, string?> { ["Mesh:Client:Namespaces:0"] = "payments" },
            configureServices: s =>
            {
                s.AddSingleton<IMeshServiceEndpointProviderFactory>(discovery);
                s.AddHttpClient("any").AddMesh();
            });
        var client = frontend.Services.GetRequiredService<IHttpClientFactory>().CreateClient("any");

        // A declared namespace: a mesh call over mTLS (the callee sees the caller's SPIFFE ID) that expects ns/payments.
        var answer = await client.GetFromJsonAsync<JsonElement>("https://orders.payments/whoami", Ct);
        Assert.Equal($"spiffe://{ControlPlaneHost.TrustDomain}/ns/default/svc/frontend", answer.GetProperty("caller").GetString());
        Assert.Equal("HTTP/2", answer.GetProperty("protocol").GetString());

        // The caller's own namespace: https://orders expects ns/default/svc/orders, so the same server is refused.
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => client.GetStringAsync("https://orders/whoami", Ct));
        Assert.True(frontend.Metrics.Sum("mesh.client.handshake.refusals", "mesh.reason", "unexpected_identity") >= 1);
        Assert.Equal(new[] { "orders", "orders.payments" }, discovery.Lookups.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Through_a_mesh_client_a_non_mesh_host_is_an_ordinary_call_that_never_enters_mesh_discovery()
    {
        await using var external = await ExternalHttpsServer.StartAsync();

        // The plain handler is swapped for one that connects every host to the local server and trusts its certificate, so
        // that names like example.com are tried on a real socket without DNS. Everything above it is the mesh client's own.
        var discovery = new RecordingDiscovery();
        await using var frontend = await MeshAppHost.StartAsync(bed.ControlPlane, "frontend", NamespacesBed.Token, meshEndpoint: false,
            configureServices: s =>
            {
                s.AddSingleton<IMeshServiceEndpointProviderFactory>(discovery);
                s.Replace(ServiceDescriptor.Singleton(new PassThroughTransport(external.RedirectingHandler())));
                s.AddHttpClient("any").AddMesh();
            });
        var client = frontend.Services.GetRequiredService<IHttpClientFactory>().CreateClient("any");

        string[] hosts = ["example.com", "printer.local", "orders.unknownns", "api.github.com", "localhost", $"localhost:{external.Port}"];
        foreach (var host in hosts)
        {
            Assert.Equal("external", await client.GetStringAsync($"https://{host}/", Ct));
        }

        // Each went straight to its host: TLS with that name as SNI, no client certificate, HttpClient's own HTTP/1.1.
        Assert.Equal(new[] { "example.com", "printer.local", "orders.unknownns", "api.github.com", "localhost", "localhost" }, external.Hellos);
        Assert.Empty(external.ClientCertificates);
        Assert.All(external.Protocols, p => Assert.Equal("HTTP/1.1", p));
        Assert.Equal(hosts.Length, external.Protocols.Count);

        // Never mesh calls: no discovery lookup, no mesh metrics.
        Assert.Empty(discovery.Lookups);
        Assert.Equal(0, frontend.Metrics.Sum("mesh.client.requests"));
    }

    [Fact]
    public async Task A_non_mesh_HTTPS_host_is_called_with_the_machines_trust_and_without_a_client_certificate()
    {
        // The real plain handler. The test cannot add roots to the machine's store, so the self-signed server is reached
        // (its TLS handshake sees the name and no client certificate) and the client refuses it on the machine's trust,
        // not with a mesh error.
        await using var external = await ExternalHttpsServer.StartAsync();
        var discovery = new RecordingDiscovery();
        await using var frontend = await MeshAppHost.StartAsync(bed.ControlPlane, "frontend", NamespacesBed.Token, meshEndpoint: false,
            configureServices: s =>
            {
                s.AddSingleton<IMeshServiceEndpointProviderFactory>(discovery);
                s.AddHttpClient("any").AddMesh();
            });
        var client = frontend.Services.GetRequiredService<IHttpClientFactory>().CreateClient("any");

        foreach (var uri in (string[])[$"https://localhost:{external.Port}/", $"https://127.0.0.1:{external.Port}/"])
        {
            var error = await Assert.ThrowsAsync<HttpRequestException>(() => client.GetStringAsync(uri, Ct));
            Assert.IsNotType<MeshCallException>(error);
            var untrusted = Assert.IsType<AuthenticationException>(error.InnerException);
            Assert.Contains("UntrustedRoot", untrusted.Message, StringComparison.Ordinal);
        }

        Assert.Equal(new[] { "localhost", "(no SNI)" }, external.Hellos);
        Assert.Empty(external.ClientCertificates);
        Assert.Empty(discovery.Lookups);
        Assert.Equal(0, frontend.Metrics.Sum("mesh.client.requests"));
    }

    [Fact]
    public async Task With_NonMeshHosts_Refuse_a_request_that_is_not_a_mesh_call_fails_with_not_a_mesh_destination_naming_the_host()
    {
        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", NamespacesBed.Token, map: app => app.MapGet("/", () => "orders"));
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var discovery = new RecordingDiscovery();
        discovery.Answer("orders", orders.MeshEndPoint);
        await using var frontend = await MeshAppHost.StartAsync(bed.ControlPlane, "frontend", NamespacesBed.Token, meshEndpoint: false,
            settings: new Dictionary<string, string?> { ["Mesh:Client:NonMeshHosts"] = "Refuse" },
            configureServices: s =>
            {
                s.AddSingleton<IMeshServiceEndpointProviderFactory>(discovery);
                s.AddHttpClient("any").AddMesh();
            });
        var client = frontend.Services.GetRequiredService<IHttpClientFactory>().CreateClient("any");

        Assert.Equal("orders", await client.GetStringAsync("https://orders/", Ct));

        string[] refused =
        [
            "https://example.com", "https://printer.local", $"https://localhost:{port}", "https://localhost", "https://orders.unknownns",
            $"https://127.0.0.1:{port}", "https://orders:8443", "http://orders",
        ];
        foreach (var target in refused)
        {
            var error = await Assert.ThrowsAsync<MeshCallException>(() => client.GetStringAsync(target + "/api", Ct));
            Assert.Equal("not_a_mesh_destination", error.Reason);
            Assert.Contains($"request to {target}: it is not a mesh destination", error.Message, StringComparison.Ordinal);
            Assert.Contains("Mesh:Client:NonMeshHosts is Refuse", error.Message, StringComparison.Ordinal);
        }

        // Nothing was looked up but orders, and no connection reached the local listener.
        Assert.Equal(new[] { "orders" }, discovery.Lookups);
        Assert.False(listener.Pending());
        Assert.Equal(refused.Length, frontend.Logs.Entries.Count(e => e.EventId.Id == 4002));
        Assert.Contains(frontend.Logs.Entries, e => e.EventId.Id == 4002 && e.Message.Contains("namespace 'unknownns' is neither", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_request_an_app_handler_rebuilt_is_still_a_mesh_call_and_never_leaves_the_mesh_without_mTLS()
    {
        await using var external = await ExternalHttpsServer.StartAsync();
        await using var frontend = await MeshAppHost.StartAsync(bed.ControlPlane, "frontend", NamespacesBed.Token, meshEndpoint: false,
            settings: new Dictionary<string, string?> { ["Mesh:Discovery:Static:orders:0:Address"] = $"127.0.0.1:{external.Port}" },
            configureServices: s =>
            {
                s.Replace(ServiceDescriptor.Singleton(new PassThroughTransport(external.RedirectingHandler())));

                // An app handler that sends a new HttpRequestMessage (a signing or cloning handler). The mesh client's one
                // entry is its primary handler, after every app handler, and decides by the host alone.
                s.AddMeshClient("orders").AddHttpMessageHandler(() => new CloningHandler());
            });

        var client = frontend.Services.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => client.GetStringAsync("/", Ct));

        // The copy went the mesh way: an mTLS handshake with orders' endpoint (SNI orders), refused by the client because
        // that server is no mesh workload; no request was ever served outside the mesh.
        Assert.Contains("orders", external.Hellos);
        Assert.Contains(frontend.Logs.Entries, e => e.EventId.Id == 4001);
        Assert.Empty(external.Protocols);
    }

    /// <summary>Records which names mesh discovery is asked for, and answers the ones it is told.</summary>
    private sealed class RecordingDiscovery : IMeshServiceEndpointProviderFactory
    {
        private readonly ConcurrentQueue<string> _lookups = new();
        private readonly ConcurrentDictionary<string, IPEndPoint> _answers = new(StringComparer.Ordinal);

        public IReadOnlyList<string> Lookups => [.. _lookups];

        public void Answer(string name, IPEndPoint endPoint) => _answers[name] = endPoint;

        public bool TryCreateProvider(ServiceEndpointQuery query, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IServiceEndpointProvider? provider)
        {
            _lookups.Enqueue(query.ServiceName);
            provider = new Provider(_answers.TryGetValue(query.ServiceName, out var endPoint) ? endPoint : null);
            return true;
        }

        private sealed class Provider(IPEndPoint? endPoint) : IServiceEndpointProvider
        {
            public ValueTask PopulateAsync(IServiceEndpointBuilder endpoints, CancellationToken cancellationToken)
            {
                if (endPoint is not null)
                {
                    endpoints.Endpoints.Add(ServiceEndpoint.Create(endPoint));
                }

                return ValueTask.CompletedTask;
            }

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }

    /// <summary>Sends a fresh copy of each request, as some signing or logging handlers do; the copy carries no request options.</summary>
    private sealed class CloningHandler : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var copy = new HttpRequestMessage(request.Method, request.RequestUri) { Version = request.Version };
            return base.SendAsync(copy, cancellationToken);
        }
    }

    /// <summary>
    /// A plain HTTPS server outside the mesh on 127.0.0.1, with a self-signed certificate. It records the SNI name of every
    /// TLS handshake, any client certificate, and the protocol of every request; every request gets "external".
    /// </summary>
    private sealed class ExternalHttpsServer : IAsyncDisposable
    {
        private readonly ConcurrentQueue<string> _hellos = new();
        private readonly ConcurrentQueue<string> _clientCertificates = new();
        private readonly ConcurrentQueue<string> _protocols = new();
        private readonly X509Certificate2 _certificate;
        private WebApplication _app = null!;

        private ExternalHttpsServer() => _certificate = CreateSelfSigned();

        public int Port { get; private set; }

        public IReadOnlyList<string> Hellos => [.. _hellos];

        public IReadOnlyList<string> ClientCertificates => [.. _clientCertificates];

        public IReadOnlyList<string> Protocols => [.. _protocols];

        public static async Task<ExternalHttpsServer> StartAsync()
        {
            var server = new ExternalHttpsServer();
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseKestrelHttpsConfiguration();
            builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.UseHttps(new HttpsConnectionAdapterOptions
            {
                ServerCertificateSelector = (_, name) =>
                {
                    server._hellos.Enqueue(string.IsNullOrEmpty(name) ? "(no SNI)" : name);
                    return server._certificate;
                },
                ClientCertificateMode = ClientCertificateMode.AllowCertificate,
                ClientCertificateValidation = (certificate, _, _) =>
                {
                    server._clientCertificates.Enqueue(certificate.Subject);
                    return true;
                },
            })));
            server._app = builder.Build();
            server._app.Map("/{**path}", (HttpContext http) =>
            {
                if (http.Connection.ClientCertificate is { } certificate)
                {
                    server._clientCertificates.Enqueue(certificate.Subject);
                }

                server._protocols.Enqueue(http.Request.Protocol);
                return "external";
            });
            await server._app.StartAsync();
            server.Port = new Uri(server._app.Urls.First()).Port;
            return server;
        }

        /// <summary>A plain handler that connects every host to this server and trusts this server's certificate only.</summary>
        public SocketsHttpHandler RedirectingHandler() => new()
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, Port), cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            },
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is not null && certificate.GetCertHashString() == _certificate.GetCertHashString(),
            },
        };

        public async ValueTask DisposeAsync()
        {
            await _app.DisposeAsync();
            _certificate.Dispose();
        }

        private static X509Certificate2 CreateSelfSigned()
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest("CN=external.test", key, HashAlgorithmName.SHA256);
            var san = new SubjectAlternativeNameBuilder();
            san.AddDnsName("localhost");
            san.AddIpAddress(IPAddress.Loopback);
            request.CertificateExtensions.Add(san.Build());
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
            using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
            return TestCertificates.ForTls(X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null));
        }
    }
}
