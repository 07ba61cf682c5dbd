// The upstream of every load-harness topology: one route, GET /data, answering 1 kB.
// Only how it listens changes with the topology (Bench:Mode):
//   plain  HTTP/1.1 on 127.0.0.1:<Bench:Port>             (direct-http, and behind the inbound haproxy of sidecar-haproxy)
//   mtls   HTTPS on 127.0.0.1:<Bench:Port>, client certificate required and checked against Bench:CaPath,
//          HTTP/1.1 and HTTP/2 (direct-mtls, direct-mtls-h2)
//   mesh   builder.AddMesh() with MeshKit's defaults; the mesh endpoint comes from Mesh:Endpoint:Port (meshkit,
//          meshkit-notrace)
// Bench:Grpc=true also serves the gRPC pair's service (BenchData/Get from Shared/bench.proto: the same 1 kB in its
// reply) with Grpc.AspNetCore, over HTTP/2: on the mtls listener (direct-grpc-mtls) or the mesh endpoint (meshkit-grpc).
// Bench:OpenTelemetry=true adds the hand-wired OpenTelemetry of direct-mtls-h2-otel (plain and mtls modes).
// GET /_bench/allocated (this process's allocated bytes) is served on plain HTTP: on Bench:Port in plain mode, on
// Bench:AdminPort in the others (for mesh, as the app's public address, next to the mesh endpoint).
using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using MeshKit.LoadHarness.Upstream;

var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.SetMinimumLevel(LogLevel.Warning);
var mode = builder.Configuration["Bench:Mode"] ?? throw new InvalidOperationException("Bench:Mode is missing: plain, mtls or mesh.");
var port = builder.Configuration.GetValue<int>("Bench:Port");
var adminPort = builder.Configuration.GetValue<int>("Bench:AdminPort");

switch (mode)
{
    case "plain":
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port));
        break;
    case "mtls":
        var tls = HandWiredTls.Load(builder.Configuration);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, port, listen =>
            {
                listen.Protocols = HttpProtocols.Http1AndHttp2;
                listen.UseHttps(tls.CreateHandshakeOptions());
            });
            if (adminPort > 0)
            {
                k.Listen(IPAddress.Loopback, adminPort);
            }
        });
        break;
    case "mesh":
        if (adminPort > 0)
        {
            // The app's own (public) address; AddMesh() binds it next to the mesh endpoint.
            builder.WebHost.UseUrls($"http://127.0.0.1:{adminPort}");
        }

        builder.AddMesh();
        break;
    default:
        throw new InvalidOperationException($"Bench:Mode '{mode}' is not plain, mtls or mesh.");
}

if (mode != "mesh" && builder.Configuration.GetValue<bool>("Bench:OpenTelemetry"))
{
    BenchApp.AddHandWiredOpenTelemetry(builder.Services);
}

var grpc = builder.Configuration.GetValue<bool>("Bench:Grpc");
if (grpc)
{
    builder.Services.AddGrpc();
}

var app = builder.Build();
var payload = BenchDataService.CreatePayload();
app.MapGet("/data", () => Results.Bytes(payload, "application/octet-stream"));
if (grpc)
{
    app.MapGrpcService<BenchDataService>();
}

app.MapGet("/healthz", () => "ok");
BenchApp.MapAllocated(app);
app.Run();

/// <summary>
/// The hand-wired mTLS floor, done the way a careful app would: a cached certificate context (no chain build for our own
/// certificate per handshake), a required client certificate, and a chain check against the bench CA only.
/// </summary>
internal sealed class HandWiredTls(SslStreamCertificateContext serverContext, X509Certificate2 ca)
{
    public static HandWiredTls Load(IConfiguration configuration)
    {
        var certificate = X509Certificate2.CreateFromPemFile(configuration["Bench:CertPath"]!, configuration["Bench:KeyPath"]);
        var ca = X509CertificateLoader.LoadCertificateFromFile(configuration["Bench:CaPath"]!);
        return new HandWiredTls(SslStreamCertificateContext.Create(certificate, additionalCertificates: null, offline: true), ca);
    }

    public TlsHandshakeCallbackOptions CreateHandshakeOptions() => new()
    {
        OnConnection = _ => ValueTask.FromResult(new SslServerAuthenticationOptions
        {
            ServerCertificateContext = serverContext,
            ClientCertificateRequired = true,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            CertificateChainPolicy = CreateChainPolicy(),
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            ApplicationProtocols = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11],
            RemoteCertificateValidationCallback = static (_, certificate, _, errors) => certificate is not null && errors == SslPolicyErrors.None,
        }),
    };

    private X509ChainPolicy CreateChainPolicy()
    {
        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = X509RevocationMode.NoCheck,
            DisableCertificateDownloads = true,
        };
        policy.CustomTrustStore.Add(ca);
        return policy;
    }
}
