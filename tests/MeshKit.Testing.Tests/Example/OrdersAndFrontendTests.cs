using System.Net;
using System.Net.Http.Json;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using MeshKit.Testing;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Testing.Tests.Example;

/// <summary>
/// The example of docs/testing.md: two apps as their authors wrote them (tests/TestMode: <c>builder.AddMesh()</c>, settings
/// in appsettings.json, no control-service settings), each under its own <see cref="WebApplicationFactory{TEntryPoint}"/>
/// with real Kestrel sockets, in test mode with one in-memory CA. The frontend calls orders over mTLS; orders requires the
/// mesh caller "frontend" and sees its SPIFFE ID.
/// </summary>
[Trait("Area", "Testing")]
public sealed class OrdersAndFrontendTests : IAsyncLifetime
{
    private readonly MeshTestCertificateAuthority _ca = new();
    private WebApplicationFactory<TestMode.Orders.Program> _orders = null!;
    private WebApplicationFactory<TestMode.Frontend.Program> _frontend = null!;

    public ValueTask InitializeAsync()
    {
        // Orders first: the frontend's static discovery needs the port its mesh endpoint got.
        _orders = new WebApplicationFactory<TestMode.Orders.Program>().WithWebHostBuilder(web => web
            .ConfigureAppConfiguration(configuration => configuration.AddInMemoryCollection([new("Mesh:Endpoint:Port", "0")]))
            .ConfigureServices(services => services.AddMeshTestMode(_ca)));
        _orders.UseKestrel(0);
        _orders.StartServer();

        _frontend = new WebApplicationFactory<TestMode.Frontend.Program>().WithWebHostBuilder(web => web
            // A public endpoint beside the mesh endpoint, for the test's browser client. Set with UseSetting: AddMesh reads the
            // app's urls when it runs, before the factory's own callbacks.
            .UseSetting("urls", "http://127.0.0.1:0")
            .ConfigureAppConfiguration(configuration => configuration
                .AddInMemoryCollection([new("Mesh:Endpoint:Port", "0")])
                .AddMeshDestination("orders", _orders.Services.GetMeshEndpoint()))
            .ConfigureServices(services => services.AddMeshTestMode(_ca)));
        _frontend.UseKestrel(0);
        _frontend.StartServer();
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        await _frontend.DisposeAsync();
        await _orders.DisposeAsync();
        _ca.Dispose();
    }

    [Fact]
    public async Task The_frontend_calls_orders_over_mTLS_and_orders_sees_the_frontends_SPIFFE_ID()
    {
        // The frontend's public endpoint, as a browser calls it (the factory's default client would pick the mesh endpoint).
        using var browser = _frontend.CreateClient(new WebApplicationFactoryClientOptions { BaseAddress = _frontend.Services.GetPublicAddress() });

        var order = await browser.GetFromJsonAsync<TestMode.Orders.OrderView>(new Uri("/checkout/42", UriKind.Relative), TestContext.Current.CancellationToken);

        Assert.NotNull(order);
        Assert.Equal(42, order.Id);
        Assert.Equal("spiffe://mesh.local/ns/default/svc/frontend", order.Caller);
    }

    [Fact]
    public async Task Orders_refuses_a_mesh_caller_that_is_not_the_frontend()
    {
        using var billing = _ca.IssueCertificate("billing");
        using var client = DirectClient(billing);

        using var response = await client.GetAsync(new Uri($"https://{_orders.Services.GetMeshEndpoint()}/orders/42"), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
    }

    [Fact]
    public async Task Orders_refuses_at_the_handshake_a_frontend_certificate_from_another_CA()
    {
        using var otherCa = new MeshTestCertificateAuthority();
        using var impostor = otherCa.IssueCertificate("frontend");
        using var client = DirectClient(impostor);

        await Assert.ThrowsAnyAsync<HttpRequestException>(() =>
            client.GetAsync(new Uri($"https://{_orders.Services.GetMeshEndpoint()}/orders/42"), TestContext.Current.CancellationToken));
    }

    /// <summary>A plain HttpClient that presents <paramref name="certificate"/> and trusts the test CA's root only.</summary>
    private HttpClient DirectClient(X509Certificate2 certificate)
    {
        var root = _ca.RootCertificate;
        var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                ClientCertificates = [certificate],
                RemoteCertificateValidationCallback = (_, server, _, _) =>
                {
                    if (server is null)
                    {
                        return false;
                    }

                    using var chain = new X509Chain();
                    chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                    chain.ChainPolicy.CustomTrustStore.Add(root);
                    chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                    return chain.Build(server as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(server.GetRawCertData()));
                },
            },
        };
        return new HttpClient(handler);
    }
}
