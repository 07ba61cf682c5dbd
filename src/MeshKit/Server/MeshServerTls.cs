using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using MeshKit.Hosting;
using MeshKit.Identity;
using MeshKit.Telemetry;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshKit.Server;

/// <summary>
/// TLS of the mesh endpoint: presents the workload certificate from a cached <see cref="SslStreamCertificateContext"/>
/// (swapped atomically on rotation; no chain is built per handshake), requires a client certificate, and accepts it only
/// when it is a valid X.509-SVID of this trust domain chaining to the trust bundle. Every refusal is logged and counted
/// with its reason. With TLS 1.3 the client learns of a refusal on its first read, not in its handshake call.
/// </summary>
internal sealed partial class MeshServerTls(
    IOptions<MeshOptions> options,
    WorkloadIdentitySource identity,
    MeshMetrics metrics,
    TimeProvider time,
    ILogger<MeshServerTls> logger)
{
    private readonly string _trustDomain = options.Value.TrustDomain;

    public TlsHandshakeCallbackOptions CreateHandshakeOptions(TimeSpan handshakeTimeout) => new()
    {
        HandshakeTimeout = handshakeTimeout,
        OnConnection = context => ValueTask.FromResult(CreateServerOptions(context)),
    };

    private SslServerAuthenticationOptions CreateServerOptions(TlsHandshakeCallbackContext context)
    {
        // Fail closed: without a valid identity of our own, the mesh endpoint accepts nobody.
        var current = identity.GetValid();
        var features = context.Connection.Features;
        var remote = context.Connection.RemoteEndPoint?.ToString() ?? "-";
        return new SslServerAuthenticationOptions
        {
            ServerCertificateContext = current.CertificateContext,
            ClientCertificateRequired = true,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            CertificateChainPolicy = current.CreateChainPolicy(),
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            ApplicationProtocols = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11],

            // Every connection sees the caller's whole chain: a resumed TLS session brings back the caller's certificate but
            // not the intermediates it sent, and a certificate from a control-service replica's intermediate cannot be
            // validated without them (refused as a partial chain). Pooled connections make full handshakes rare.
            AllowTlsResume = false,
            RemoteCertificateValidationCallback = (_, certificate, chain, errors) =>
            {
                var chainVerified = errors == SslPolicyErrors.None;
                var result = SvidValidator.Validate(
                    certificate as X509Certificate2,
                    chain?.ChainPolicy.ExtraStore,
                    current.Bundle,
                    _trustDomain,
                    time.GetUtcNow(),
                    SvidUsage.Client,
                    chainVerified);
                if (result.IsValid && identity.IsRevokedPeer(result.SpiffeId!.Value))
                {
                    result = SvidValidationResult.Reject(SvidRejection.Revoked, $"The control service revoked {result.SpiffeId}.");
                }

                if (!result.IsValid)
                {
                    LogRefused(logger, remote, MeshMetrics.ReasonName(result.Rejection), result.Detail ?? string.Empty);
                    metrics.RecordServerHandshakeRefusal(result.Rejection);
                    return false;
                }

                var connection = new MeshConnection(result.SpiffeId!, (X509Certificate2)certificate!, current.NotAfter, current.SerialNumber);
                features.Set(connection);
                features.Set<IMeshPeerFeature>(connection);
                return true;
            },
        };
    }

    [LoggerMessage(EventId = 5001, Level = LogLevel.Warning, Message = "Refused a mesh connection from {RemoteEndPoint} ({Reason}): {Detail}")]
    private static partial void LogRefused(ILogger logger, string remoteEndPoint, string reason, string detail);
}
