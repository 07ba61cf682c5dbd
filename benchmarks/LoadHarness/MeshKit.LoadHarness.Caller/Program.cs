// The caller of every load-harness topology. wrk drives GET / on plain HTTP/1.1 (Bench:Port on 127.0.0.1); each request
// makes one call to the upstream's GET /data (1 kB) through an IHttpClientFactory client named "upstream" and returns
// the body. The endpoint code is the same in every topology; only the client's wiring changes (Bench:Topology):
//   direct-http       plain HTTP/1.1 to Bench:Upstream
//   direct-mtls       hand-wired mTLS, HTTP/1.1, to Bench:Upstream (certificates from the harness)
//   direct-mtls-h2    the same over HTTP/2, several connections allowed
//   direct-mtls-h2-otel  direct-mtls-h2 plus the OpenTelemetry tracing and metrics AddMesh() turns on by default,
//                     hand-wired (BenchApp.AddHandWiredOpenTelemetry), no exporter
//   sidecar-haproxy   plain HTTP/1.1 to Bench:Upstream, which is the local (outbound) haproxy
//   meshkit           builder.AddMesh() and AddMeshClient("upstream"): MeshKit's defaults, nothing tuned
//   meshkit-notrace   the same; the harness passes Mesh:Telemetry:ConfigureOpenTelemetry=false
// The gRPC pair makes that one call a gRPC unary call instead (BenchData/Get from Shared/bench.proto, the same 1 kB in
// its reply) through a typed client of Grpc.Net.ClientFactory, and returns the reply's payload:
//   direct-grpc-mtls  AddGrpcClient<T> with the hand-wired mTLS SocketsHttpHandler of direct-mtls-h2 (HTTP/2), to
//                     Bench:Upstream, a Grpc.AspNetCore service requiring the client certificate
//   meshkit-grpc      builder.AddMesh() and AddMeshGrpcClient<T>("upstream"); the harness passes
//                     Mesh:Telemetry:ConfigureOpenTelemetry=false, like for like with direct-grpc-mtls (no tracing)
// Every topology also answers GET /_bench/allocated (this process's allocated bytes) on the same port.
using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using MeshKit.LoadHarness.Grpc;

var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.SetMinimumLevel(LogLevel.Warning);
var topology = builder.Configuration["Bench:Topology"] ?? throw new InvalidOperationException("Bench:Topology is missing.");
var port = builder.Configuration.GetValue<int>("Bench:Port");
builder.WebHost.UseUrls($"http://127.0.0.1:{port}");

var grpc = topology is "direct-grpc-mtls" or "meshkit-grpc";
Uri Upstream() => new(builder.Configuration["Bench:Upstream"] ?? throw new InvalidOperationException("Bench:Upstream is missing."));

switch (topology)
{
    case "meshkit" or "meshkit-notrace":
        builder.AddMesh();
        builder.Services.AddMeshClient("upstream");
        break;
    case "direct-http" or "sidecar-haproxy":
        builder.Services.AddHttpClient("upstream", c => c.BaseAddress = Upstream())
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false, UseCookies = false })
            .SetHandlerLifetime(Timeout.InfiniteTimeSpan);
        break;
    case "direct-mtls" or "direct-mtls-h2" or "direct-mtls-h2-otel":
        var http2 = topology != "direct-mtls";
        if (topology == "direct-mtls-h2-otel")
        {
            BenchApp.AddHandWiredOpenTelemetry(builder.Services);
        }

        var tls = HandWiredClientTls.Load(builder.Configuration);
        builder.Services.AddHttpClient("upstream", c =>
            {
                c.BaseAddress = Upstream();
                c.DefaultRequestVersion = http2 ? HttpVersion.Version20 : HttpVersion.Version11;
                c.DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact;
            })
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
            {
                UseProxy = false,
                AllowAutoRedirect = false,
                UseCookies = false,
                EnableMultipleHttp2Connections = http2,
                SslOptions = tls.CreateClientOptions(),
            })
            .SetHandlerLifetime(Timeout.InfiniteTimeSpan);
        break;
    case "direct-grpc-mtls":
        // The hand-wired gRPC floor: the same TLS and handler as direct-mtls-h2; gRPC asks for HTTP/2 itself.
        var grpcTls = HandWiredClientTls.Load(builder.Configuration);
        builder.Services.AddGrpcClient<BenchData.BenchDataClient>(o => o.Address = Upstream())
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
            {
                UseProxy = false,
                AllowAutoRedirect = false,
                UseCookies = false,
                EnableMultipleHttp2Connections = true,
                SslOptions = grpcTls.CreateClientOptions(),
            })
            .SetHandlerLifetime(Timeout.InfiniteTimeSpan);
        break;
    case "meshkit-grpc":
        builder.AddMesh();
        builder.Services.AddMeshGrpcClient<BenchData.BenchDataClient>("upstream");
        break;
    default:
        throw new InvalidOperationException($"Bench:Topology '{topology}' is not known.");
}

var app = builder.Build();
if (grpc)
{
    var request = new DataRequest();
    app.MapGet("/", async (BenchData.BenchDataClient client, CancellationToken cancellationToken) =>
    {
        var reply = await client.GetAsync(request, cancellationToken: cancellationToken);
        return Results.Bytes(reply.Payload.Memory, "application/octet-stream");
    });
}
else
{
    app.MapGet("/", async (IHttpClientFactory clients, CancellationToken cancellationToken) =>
    {
        var body = await clients.CreateClient("upstream").GetByteArrayAsync("/data", cancellationToken);
        return Results.Bytes(body, "application/octet-stream");
    });
}

app.MapGet("/healthz", () => "ok");
BenchApp.MapAllocated(app);
app.Run();

/// <summary>The hand-wired client side of mTLS: a cached client certificate context and the bench CA as the only root.</summary>
internal sealed class HandWiredClientTls(SslStreamCertificateContext clientContext, X509Certificate2 ca)
{
    public static HandWiredClientTls Load(IConfiguration configuration)
    {
        var certificate = X509Certificate2.CreateFromPemFile(configuration["Bench:CertPath"]!, configuration["Bench:KeyPath"]);
        var ca = X509CertificateLoader.LoadCertificateFromFile(configuration["Bench:CaPath"]!);
        return new HandWiredClientTls(SslStreamCertificateContext.Create(certificate, additionalCertificates: null, offline: true), ca);
    }

    public SslClientAuthenticationOptions CreateClientOptions()
    {
        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = X509RevocationMode.NoCheck,
            DisableCertificateDownloads = true,
        };
        policy.CustomTrustStore.Add(ca);
        return new SslClientAuthenticationOptions
        {
            ClientCertificateContext = clientContext,
            CertificateChainPolicy = policy,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        };
    }
}
