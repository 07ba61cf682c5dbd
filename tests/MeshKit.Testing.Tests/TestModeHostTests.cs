using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using MeshKit.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshKit.Testing.Tests;

/// <summary>
/// A host in test mode, built the way a test builds a minimal app (<c>WebApplication.CreateSlimBuilder</c>): it starts with
/// no control-service settings at all, while the same host without test mode still refuses to start (fails closed).
/// </summary>
[Trait("Area", "Testing")]
public sealed class TestModeHostTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_host_in_test_mode_starts_with_no_control_service_settings_and_serves_mTLS(bool testModeBeforeAddMesh)
    {
        using var ca = new MeshTestCertificateAuthority();
        using var state = new TempDirectory("state");
        var logs = new TestLogSink();
        await using var app = await StartAsync(ca, "orders", state.Path, testModeBeforeAddMesh, logs);

        using var caller = ca.IssueCertificate("frontend");
        using var client = DirectClient(caller, ca);
        var served = await client.GetStringAsync(new Uri($"https://{app.Services.GetMeshEndpoint()}/whoami"), TestContext.Current.CancellationToken);

        Assert.Equal("spiffe://mesh.local/ns/default/svc/frontend", served);
        Assert.Equal(2, ca.IssuedCount); // the host's own certificate and the caller's

        // No control-service client was made: nothing (no saved trust bundle of the test root) lands in the state folder.
        Assert.Empty(Directory.EnumerateFileSystemEntries(state.Path));

        // The host says once that it has no control channel, and names the issuer.
        var notice = Assert.Single(logs.Entries, e => e.EventId.Id == 2125);
        Assert.Contains("in-memory test CA", notice.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_same_host_without_test_mode_does_not_start_and_names_the_missing_settings()
    {
        var builder = NewBuilder("orders", stateDirectory: null);
        builder.AddMesh();

        var failure = await Assert.ThrowsAsync<OptionsValidationException>(() => BuildAndStartAsync(builder));

        Assert.Contains("Mesh:ControlPlane:Address is missing", failure.Message, StringComparison.Ordinal);
        Assert.Contains("Mesh:ControlPlane:TrustBundlePath is missing", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_host_whose_trust_domain_is_not_the_CAs_does_not_start_and_names_both()
    {
        using var ca = new MeshTestCertificateAuthority(new MeshTestCertificateAuthorityOptions { TrustDomain = "test.example" });
        var builder = NewBuilder("orders", stateDirectory: null);
        builder.AddMesh();
        builder.Services.AddMeshTestMode(ca);

        var failure = await Assert.ThrowsAsync<OptionsValidationException>(() => BuildAndStartAsync(builder));

        Assert.Contains("Mesh:TrustDomain is 'mesh.local'", failure.Message, StringComparison.Ordinal);
        Assert.Contains("'test.example'", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Certificates_from_the_test_CA_are_renewed_before_they_expire_and_calls_keep_working()
    {
        using var ca = new MeshTestCertificateAuthority(new MeshTestCertificateAuthorityOptions { CertificateLifetime = TimeSpan.FromSeconds(4) });
        await using var app = await StartAsync(ca, "orders", stateDirectory: null, testModeBeforeAddMesh: false);
        var first = ServedCertificate(app);

        // Renewal at about a third of 4 s: two renewals within about 3 s of start, well before 15 s.
        await Eventually.WaitAsync(() => ca.IssuedCount >= 3, TimeSpan.FromSeconds(15), "two renewals of the host's 4 s certificate");
        await Eventually.WaitAsync(() => ServedCertificate(app).NotAfter > first.NotAfter, TimeSpan.FromSeconds(5), "a certificate in use that outlives the first");

        // Past the first certificate's expiry, a new connection still completes mTLS with the renewed certificate.
        await Eventually.WaitAsync(() => DateTime.Now > first.NotAfter.AddSeconds(1), TimeSpan.FromSeconds(10), "the first certificate's expiry");
        using var caller = ca.IssueCertificate("frontend");
        using var client = DirectClient(caller, ca);
        var served = await client.GetStringAsync(new Uri($"https://{app.Services.GetMeshEndpoint()}/whoami"), TestContext.Current.CancellationToken);
        Assert.Equal("spiffe://mesh.local/ns/default/svc/frontend", served);
    }

    private static X509Certificate2 ServedCertificate(WebApplication app)
    {
        // What the mesh endpoint presents to the next handshake; without a client certificate (so the CA issues nothing
        // more) the server then refuses the handshake, which is not what is looked at here.
        X509Certificate2? seen = null;
        using var tcp = new System.Net.Sockets.TcpClient();
        tcp.Connect(app.Services.GetMeshEndpoint());
        using var tls = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false, (_, certificate, _, _) =>
        {
            seen = certificate is null ? null : X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
            return true;
        });
        try
        {
            tls.AuthenticateAsClient(new SslClientAuthenticationOptions { TargetHost = "orders" });
        }
        catch (Exception ex) when (ex is IOException or System.Security.Authentication.AuthenticationException)
        {
        }

        return seen ?? throw new InvalidOperationException("The mesh endpoint presented no certificate.");
    }

    /// <summary>Builds and starts the host (the settings are read as the server is made, at build), then stops it.</summary>
    private static async Task BuildAndStartAsync(WebApplicationBuilder builder)
    {
        await using var app = builder.Build();
        await app.StartAsync(TestContext.Current.CancellationToken);
        await app.StopAsync(TestContext.Current.CancellationToken);
    }

    private static WebApplicationBuilder NewBuilder(string service, string? stateDirectory)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();

        // The service's name and its mesh endpoint: nothing of the control service (no address, join token, bundle).
        var settings = new Dictionary<string, string?>
        {
            ["Mesh:Service:Name"] = service,
            ["Mesh:Endpoint:Port"] = "0",
            ["Mesh:Endpoint:Address"] = "127.0.0.1",
            ["Mesh:Identity:RenewalFraction"] = "0.35",
        };
        if (stateDirectory is not null)
        {
            settings["Mesh:ControlPlane:StateDirectory"] = stateDirectory;
        }

        builder.Configuration.AddInMemoryCollection(settings);
        return builder;
    }

    private static async Task<WebApplication> StartAsync(MeshTestCertificateAuthority ca, string service, string? stateDirectory, bool testModeBeforeAddMesh, TestLogSink? logs = null)
    {
        var builder = NewBuilder(service, stateDirectory);
        if (logs is not null)
        {
            builder.Logging.AddProvider(logs);
        }
        if (testModeBeforeAddMesh)
        {
            builder.Services.AddMeshTestMode(ca);
            builder.AddMesh();
        }
        else
        {
            builder.AddMesh();
            builder.Services.AddMeshTestMode(ca);
        }

        var app = builder.Build();
        app.MapGet("/whoami", (HttpContext http) => http.Features.Get<IMeshPeerFeature>()!.SpiffeId.Value).RequireMeshCaller("frontend");
        await app.StartAsync(TestContext.Current.CancellationToken);
        return app;
    }

    private static HttpClient DirectClient(X509Certificate2 certificate, MeshTestCertificateAuthority ca)
    {
        var root = ca.RootCertificate;
        return new HttpClient(new SocketsHttpHandler
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
        });
    }
}
