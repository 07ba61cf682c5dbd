using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using MeshKit.Discovery;
using MeshKit.Hosting;
using MeshKit.Identity;
using MeshKit.Telemetry;
using Microsoft.Extensions.Logging;

namespace MeshKit.Transport;

/// <summary>
/// The connections of one destination to one endpoint: a <see cref="SocketsHttpHandler"/> that connects to the
/// endpoint's address while the request keeps the logical name as its host, so TLS SNI and the Host header say
/// <c>orders</c> and the pool is keyed by destination. The server must present the destination's SPIFFE ID.
/// </summary>
/// <remarks>
/// When the workload certificate or trust bundle changes, the current handler is retired: new requests go to a fresh
/// one (new connections, new certificate), requests already under way finish on the old one, and the old one is
/// disposed once idle, closing its connections. Connection lifetime is also capped at a quarter of the certificate
/// lifetime, so no pooled connection outlives the certificates it was opened with.
/// </remarks>
internal sealed partial class EndpointConnectionPool : IDisposable
{
    private static readonly TimeSpan RetiredGrace = TimeSpan.FromSeconds(10);
    private readonly MeshDestination _destination;
    private readonly MeshEndpoint _endpoint;
    private readonly MeshOptions _options;
    private readonly WorkloadIdentitySource _identity;
    private readonly MeshMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly Func<MeshEndpoint, HttpMessageHandler>? _handlerOverride;
    private volatile Generation _current;
    private bool _disposed;

    public EndpointConnectionPool(
        MeshDestination destination,
        MeshEndpoint endpoint,
        MeshOptions options,
        WorkloadIdentitySource identity,
        MeshMetrics metrics,
        TimeProvider time,
        ILogger logger,
        Func<MeshEndpoint, HttpMessageHandler>? handlerOverride = null)
    {
        _handlerOverride = handlerOverride;
        _destination = destination;
        _endpoint = endpoint;
        _options = options;
        _identity = identity;
        _metrics = metrics;
        _time = time;
        _logger = logger;
        _current = CreateGeneration(identity.GetValid());
    }

    public MeshEndpoint Endpoint => _endpoint;

    /// <summary>
    /// Takes the connections opened with <paramref name="identity"/> for one request; give them back with
    /// <see cref="Release"/> once the request is done. The caller awaits the send itself, so the pool adds no state
    /// machine of its own to the call.
    /// </summary>
    public PooledConnections Rent(WorkloadIdentity identity) => new(Acquire(identity));

    /// <summary>Gives back what <see cref="Rent"/> took; the retired connections close once nobody uses them.</summary>
    public void Return(PooledConnections connections) => Release(connections.Generation);

    /// <summary>Moves new requests to fresh connections (a new certificate or bundle); current requests finish where they are.</summary>
    public void Retire()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            var old = _current;
            var identity = _identity.Current;
            if (identity is null || ReferenceEquals(old.Identity, identity))
            {
                return;
            }

            _current = CreateGeneration(identity);
            RetireGeneration(old);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            RetireGeneration(_current);
        }
    }

    private Generation Acquire(WorkloadIdentity identity)
    {
        while (true)
        {
            var generation = _current;

            // The identity moved on and nobody retired us yet (the change event races the request): do it now.
            if (!ReferenceEquals(generation.Identity, identity) && !_disposed)
            {
                Retire();
                generation = _current;
            }

            Interlocked.Increment(ref generation.InFlight);
            if (!generation.Retired)
            {
                return generation;
            }

            Release(generation);
            ObjectDisposedException.ThrowIf(_disposed, this);
        }
    }

    private void Release(Generation generation)
    {
        if (Interlocked.Decrement(ref generation.InFlight) == 0 && generation.Retired)
        {
            ScheduleDispose(generation);
        }
    }

    private void RetireGeneration(Generation generation)
    {
        generation.Retired = true;
        if (Volatile.Read(ref generation.InFlight) == 0)
        {
            ScheduleDispose(generation);
        }
    }

    private void ScheduleDispose(Generation generation)
    {
        if (Interlocked.Exchange(ref generation.DisposeScheduled, 1) == 1)
        {
            return;
        }

        // Responses returned to the app may still be streaming their bodies over these connections; give them time.
        _ = Task.Delay(RetiredGrace, _time).ContinueWith(static (_, state) => ((Generation)state!).Invoker.Dispose(), generation, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private Generation CreateGeneration(WorkloadIdentity identity)
    {
        if (_handlerOverride is { } replacement)
        {
            // Benchmarks measure the call path without sockets.
            return new Generation(new HttpMessageInvoker(replacement(_endpoint), disposeHandler: true), identity);
        }

        var lifetimeCap = identity.Lifetime / 4;
        var transport = _options.Transport;
        var handler = new SocketsHttpHandler
        {
            PooledConnectionLifetime = lifetimeCap < transport.MaxConnectionLifetime ? lifetimeCap : transport.MaxConnectionLifetime,
            PooledConnectionIdleTimeout = transport.IdleConnectionTimeout,
            ConnectTimeout = transport.ConnectTimeout,
            EnableMultipleHttp2Connections = true,
            AllowAutoRedirect = false,
            UseCookies = false,
            UseProxy = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectCallback = ConnectAsync,
            SslOptions = new SslClientAuthenticationOptions
            {
                ClientCertificateContext = identity.CertificateContext,
                CertificateChainPolicy = identity.CreateChainPolicy(),
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,

                // A resumed session would not carry the server's intermediates (see MeshServerTls).
                AllowTlsResume = false,
                RemoteCertificateValidationCallback = (_, certificate, chain, errors) => ValidateServer(identity, certificate, chain, errors),
            },
        };
        return new Generation(new HttpMessageInvoker(handler, disposeHandler: true), identity);
    }

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        // Connect to the chosen endpoint, whatever the request's host says: the host is the logical name.
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(_endpoint.EndPoint, cancellationToken).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private bool ValidateServer(WorkloadIdentity identity, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        // The logical name is not in the certificate as a DNS name, and need not be: the SPIFFE ID is what is checked.
        var chainVerified = (errors & ~SslPolicyErrors.RemoteCertificateNameMismatch) == SslPolicyErrors.None;
        var result = SvidValidator.Validate(
            certificate as X509Certificate2,
            chain?.ChainPolicy.ExtraStore,
            identity.Bundle,
            _options.TrustDomain,
            _time.GetUtcNow(),
            SvidUsage.Server,
            chainVerified);
        if (result.IsValid && result.SpiffeId != _destination.ExpectedIdentity)
        {
            result = new SvidValidationResult(null, SvidRejection.UnexpectedIdentity, $"expected {_destination.ExpectedIdentity}, the server presented {result.SpiffeId}");
        }
        else if (result.IsValid && _identity.IsRevokedPeer(result.SpiffeId!.Value))
        {
            result = new SvidValidationResult(null, SvidRejection.Revoked, $"the control service revoked {result.SpiffeId}");
        }

        if (result.IsValid)
        {
            return true;
        }

        _metrics.RecordClientHandshakeRefusal(result.Rejection, _destination.Service);
        LogServerRefused(_logger, _destination.Host, _endpoint.Key, MeshMetrics.ReasonName(result.Rejection), result.Detail ?? string.Empty);
        return false;
    }

    [LoggerMessage(EventId = 4001, Level = LogLevel.Warning, Message = "Refused the server certificate of {Destination} at {Endpoint} ({Reason}): {Detail}")]
    private static partial void LogServerRefused(ILogger logger, string destination, string endpoint, string reason, string detail);

    /// <summary>The connections one request is sent on (a generation of the pool: one certificate).</summary>
    internal readonly struct PooledConnections
    {
        internal PooledConnections(Generation generation) => Generation = generation;

        /// <summary>Gets the invoker to send the request with.</summary>
        public HttpMessageInvoker Invoker => Generation.Invoker;

        internal Generation Generation { get; }
    }

    internal sealed class Generation(HttpMessageInvoker invoker, WorkloadIdentity identity)
    {
        public HttpMessageInvoker Invoker { get; } = invoker;

        public WorkloadIdentity Identity { get; } = identity;

        public int InFlight;

        public int DisposeScheduled;

        public volatile bool Retired;
    }
}
