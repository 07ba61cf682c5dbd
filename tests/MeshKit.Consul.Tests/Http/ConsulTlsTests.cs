using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MeshKit.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace MeshKit.Consul.Tests.Http;

/// <summary>
/// The TLS settings against a real HTTPS Kestrel standing in for an agent with <c>verify_incoming</c>: a private CA
/// from <c>Tls:CaFile</c>, and a client certificate from PEM files.
/// </summary>
[Trait("Area", "Discovery")]
public sealed class ConsulTlsTests : IAsyncLifetime
{
    private readonly TempDirectory _folder = new("consul-tls");
    private X509Certificate2 _ca = null!;
    private WebApplication _agent = null!;
    private volatile string? _clientSubject;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private Uri Address { get; set; } = null!;

    private string CaFile => Path.Combine(_folder.Path, "ca.pem");

    private string CertificateFile => Path.Combine(_folder.Path, "client.pem");

    private string KeyFile => Path.Combine(_folder.Path, "client-key.pem");

    private string CombinedFile => Path.Combine(_folder.Path, "client-with-key.pem");

    public async ValueTask InitializeAsync()
    {
        _ca = TestCertificates.CreateRootCa("Consul Test CA");
        File.WriteAllText(CaFile, _ca.ExportCertificatePem());
        using var clientKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var client = Issue("CN=meshkit-client", clientKey, serverAuth: false);
        File.WriteAllText(CertificateFile, client.ExportCertificatePem());
        File.WriteAllText(KeyFile, clientKey.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(CombinedFile, client.ExportCertificatePem() + "\n" + clientKey.ExportPkcs8PrivateKeyPem());

        var serverKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var serverPublic = Issue("CN=server.dc1.consul", serverKey, serverAuth: true);
        var server = TestCertificates.ForTls(serverPublic.CopyWithPrivateKey(serverKey));

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen => listen.UseHttps(new HttpsConnectionAdapterOptions
        {
            ServerCertificate = server,
            ClientCertificateMode = ClientCertificateMode.RequireCertificate,
            ClientCertificateValidation = (certificate, _, _) =>
            {
                _clientSubject = certificate.Subject;
                return certificate.Issuer == _ca.Subject;
            },
        })));
        _agent = builder.Build();
        _agent.MapGet("/v1/catalog/services", (HttpContext context) =>
        {
            context.Response.Headers["X-Consul-Index"] = "7";
            return Results.Text("{\"consul\":[]}", "application/json");
        });
        await _agent.StartAsync();
        var address = _agent.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Address = new Uri($"https://127.0.0.1:{new Uri(address).Port}");
    }

    public async ValueTask DisposeAsync()
    {
        await _agent.DisposeAsync();
        _ca.Dispose();
        _folder.Dispose();
    }

    [Fact]
    public async Task A_private_CA_and_a_client_certificate_from_PEM_files_connect()
    {
        using var client = Create(new ConsulOptions { Address = Address, Tls = { CaFile = CaFile, ClientCertificateFile = CertificateFile, ClientKeyFile = KeyFile } });

        var services = await client.GetCatalogServicesAsync(cancellationToken: Ct);

        Assert.Equal(7UL, services.Index);
        Assert.True(services.Value.ContainsKey("consul"));
        Assert.Equal("CN=meshkit-client", _clientSubject);
    }

    [Fact]
    public async Task A_client_certificate_file_may_hold_its_key()
    {
        using var client = Create(new ConsulOptions { Address = Address, Tls = { CaFile = CaFile, ClientCertificateFile = CombinedFile } });

        var services = await client.GetCatalogServicesAsync(cancellationToken: Ct);

        Assert.Equal(7UL, services.Index);
    }

    [Fact]
    public async Task Without_the_CA_file_the_agents_certificate_is_not_trusted()
    {
        using var client = Create(new ConsulOptions { Address = Address, Tls = { ClientCertificateFile = CertificateFile, ClientKeyFile = KeyFile } });

        var error = await Assert.ThrowsAsync<ConsulException>(() => client.GetCatalogServicesAsync(cancellationToken: Ct));

        Assert.Equal(ConsulErrorKind.Unreachable, error.Kind);
        Assert.Equal("GET /v1/catalog/services", error.Endpoint);
    }

    [Fact]
    public void A_CA_file_without_certificates_is_a_settings_error_naming_the_key()
    {
        var notPem = Path.Combine(_folder.Path, "not.pem");
        File.WriteAllText(notPem, "hello");

        var error = Assert.Throws<OptionsValidationException>(() => Create(new ConsulOptions { Address = Address, Tls = { CaFile = notPem } }));

        Assert.Contains($"Mesh:Discovery:Consul:Tls:CaFile '{notPem}' holds no PEM certificate", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_client_certificate_without_its_key_is_a_settings_error_naming_the_key()
    {
        var error = Assert.Throws<OptionsValidationException>(() => Create(new ConsulOptions { Address = Address, Tls = { CaFile = CaFile, ClientCertificateFile = CertificateFile } }));

        Assert.Contains($"Mesh:Discovery:Consul:Tls:ClientCertificateFile '{CertificateFile}' could not be loaded with its private key", error.Message, StringComparison.Ordinal);
    }

    private static ConsulClient Create(ConsulOptions options) => new(Options.Create(options), NullLoggerFactory.Instance);

    private X509Certificate2 Issue(string subject, ECDsa key, bool serverAuth)
    {
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(serverAuth ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2")], false));
        if (serverAuth)
        {
            var names = new SubjectAlternativeNameBuilder();
            names.AddIpAddress(IPAddress.Loopback);
            names.AddDnsName("localhost");
            request.CertificateExtensions.Add(names.Build());
        }

        var now = DateTimeOffset.UtcNow;
        var serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7F;
        return request.Create(_ca, now.AddMinutes(-5), now.AddHours(1), serial);
    }
}
