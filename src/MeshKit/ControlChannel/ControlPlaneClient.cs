using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.ExceptionServices;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Serialization;
using MeshKit.Hosting;
using MeshKit.Identity;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshKit.ControlChannel;

/// <summary>The control service's answer to a sign request.</summary>
internal sealed record SignResult(
    [property: JsonPropertyName("spiffeId")] string SpiffeId,
    [property: JsonPropertyName("certificateChain")] string CertificateChain,
    [property: JsonPropertyName("trustBundle")] string TrustBundle,
    [property: JsonPropertyName("notAfter")] DateTimeOffset NotAfter);

/// <summary>One answer of the control-channel long poll.</summary>
internal sealed record WatchResult(
    [property: JsonPropertyName("index")] long Index,
    [property: JsonPropertyName("trustBundle")] string? TrustBundle,
    [property: JsonPropertyName("trustBundleVersion")] string? TrustBundleVersion,
    [property: JsonPropertyName("revoked")] bool Revoked,
    [property: JsonPropertyName("revocationReason")] string? RevocationReason,
    [property: JsonPropertyName("policy")] JsonElement? Policy,
    [property: JsonPropertyName("policyVersion")] string? PolicyVersion,
    [property: JsonPropertyName("activeIssuer")] string? ActiveIssuer = null,
    [property: JsonPropertyName("policyState")] string? PolicyState = null,
    [property: JsonPropertyName("policyRevision")] ulong PolicyRevision = 0,
    [property: JsonPropertyName("revokedIdentities")] IReadOnlyList<string>? RevokedIdentities = null)
{
    /// <summary>
    /// Gets what the answer says of the central policy: <c>present</c>, <c>absent</c>, <c>deleted</c> or <c>unknown</c>.
    /// An answer that does not say (an older control service) counts as <c>present</c> when it carries a document and as
    /// <c>unknown</c> otherwise, so silence never removes a policy.
    /// </summary>
    public string CentralPolicyState => PolicyState switch
    {
        "present" or "absent" or "deleted" or "unknown" => PolicyState,
        _ => Policy is { ValueKind: JsonValueKind.Object } ? "present" : "unknown",
    };
}

/// <summary>What the workload reports on each poll.</summary>
internal sealed record WorkloadReport(string Instance, string? ServiceVersion, string? BundleVersion, string? PolicyVersion, string? CentralPolicyVersion, string? Ejected);

/// <summary>A refusal from the control service, with its status and machine-readable reason.</summary>
internal sealed class ControlPlaneRefusedException(HttpStatusCode status, string? reason, string detail)
    : Exception($"The control service refused with {(int)status} {reason}: {detail}")
{
    public HttpStatusCode Status { get; } = status;

    public string? Reason { get; } = reason;

    /// <summary>Gets whether retrying cannot help (a configuration or authorization problem, not an outage).</summary>
    public bool IsPermanent => Status is HttpStatusCode.BadRequest or HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized;
}

/// <summary>
/// Where the watch stands: the replica that gave the last answer and that answer's index. An index means something only to
/// the replica that gave it, so a poll sent to another replica starts from 0.
/// </summary>
/// <param name="Replica">The replica, or <see langword="null"/> before the first answer.</param>
/// <param name="Index">Its index.</param>
internal readonly record struct WatchPosition(Uri? Replica, long Index)
{
    /// <summary>Gets the position of a first poll.</summary>
    public static WatchPosition Start => default;
}

/// <summary>
/// MeshKit's own client of the control service: HTTPS that trusts only the mesh's roots and only the control
/// service's identity (<c>spiffe://&lt;td&gt;/ns/mesh-system/svc/control-plane</c>), presenting the workload certificate when
/// there is a valid one. It is not an <c>IHttpClientFactory</c> client, so no app-wide handler touches it.
/// <para>
/// The control service may run as several replicas (<see cref="IControlPlaneAddresses"/>). Every request goes to the
/// replica in use; one that fails (no connection, a reset, a timeout, a 5xx, or a refusal that another replica may not
/// give) is left for the next within the same call, so a sign or a poll succeeds as long as one replica answers. Every
/// replica is trusted the same way.
/// </para>
/// </summary>
internal sealed class ControlPlaneClient : IWorkloadCertificateIssuer, IDisposable
{
    private const string ControlPlaneService = "control-plane";
    private static readonly TimeSpan SignTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan WholeConnectTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan WatchMargin = TimeSpan.FromSeconds(10);
    private HttpClient _http;
    private readonly WorkloadIdentitySource _identity;
    private readonly TimeProvider _time;
    private readonly MeshOptions _options;
    private readonly SpiffeId _expectedServer;
    private readonly SavedTrustBundle _saved;
    private readonly ControlPlaneReplicas _replicas;
    private readonly Lazy<TrustBundle> _configuredBundle;
    private readonly Lock _firstContactGate = new();
    private TrustBundle? _firstContactBundle;
    private string? _rememberedVersion;

    public ControlPlaneClient(
        IOptions<MeshOptions> options,
        WorkloadIdentitySource identity,
        SavedTrustBundle saved,
        IControlPlaneAddresses addresses,
        TimeProvider time,
        MeshRandom random,
        ILogger<ControlPlaneClient> logger)
    {
        _options = options.Value;
        _identity = identity;
        _saved = saved;
        _time = time;
        _replicas = new ControlPlaneReplicas(addresses, time, random, logger);
        _expectedServer = SpiffeId.Create(_options.TrustDomain, SpiffeId.ReservedNamespace, ControlPlaneService);
        _configuredBundle = new Lazy<TrustBundle>(LoadConfiguredBundle);

        _http = CreateClient(identity.Current);

        // Connections present the certificate they were opened with: on every new certificate, start a new pool, and
        // close the old one once calls under way on it have had time to finish.
        identity.Changed += next =>
        {
            // Every bundle the control service sends is kept for the next start (and for first contact after a revocation).
            Remember(next.Bundle);
            var old = Interlocked.Exchange(ref _http, CreateClient(next));
            _ = Task.Delay(TimeSpan.FromSeconds(30), _time).ContinueWith(static (_, state) => ((HttpClient)state!).Dispose(), old, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        };
    }

    /// <summary>Gets the replica in use: the one that answered last, or <see langword="null"/> before any did.</summary>
    public Uri? CurrentReplica => _replicas.Current;

    /// <summary>Describes the replicas, for messages: the configured addresses, or the Consul service and what it lists.</summary>
    /// <returns>The description.</returns>
    public string DescribeReplicas() => _replicas.Describe();

    private HttpClient CreateClient(WorkloadIdentity? identity)
    {
        var lifetime = identity is null ? TimeSpan.FromMinutes(1) : identity.Lifetime / 4;
        var failover = _options.ControlPlane.FailoverTimeout;

        // .NET sends keep-alive pings no more often than once a second.
        var ping = failover < TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : failover;
        var handler = new SocketsHttpHandler
        {
            // Pooled, so a long poll that returns is followed at once by the next on the same connection; capped well
            // below the certificate's lifetime, and replaced when the certificate changes.
            PooledConnectionLifetime = lifetime < TimeSpan.FromMinutes(1) ? lifetime : TimeSpan.FromMinutes(1),

            // The TCP connect is bounded by the failover timeout (ConnectCallback); this bounds it with the TLS handshake.
            ConnectTimeout = WholeConnectTimeout,
            ConnectCallback = (context, cancellationToken) => ConnectAsync(context, failover, cancellationToken),

            // A replica that dies (or whose network goes) under a waiting long poll sends nothing more: HTTP/2 pings on the
            // poll's connection notice it within a few ping periods (about 4 s measured at 1 s), not at the end of the wait.
            KeepAlivePingDelay = ping,
            KeepAlivePingTimeout = ping,
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = ValidateServer,

                // A resumed session would not carry the replica's intermediate (see the control service's TLS set-up).
                AllowTlsResume = false,
            },
        };
        if (identity is not null && identity.HasIntermediates)
        {
            // A certificate issued by an intermediate (a replica's own, under the operator's root) must travel with it: a
            // selection callback can hand over the leaf only, so the pool presents the identity's context, and gives way to
            // a pool without a certificate if this identity expires unrenewed (a cert past NotAfter is never presented).
            handler.SslOptions.ClientCertificateContext = identity.CertificateContext;
            ScheduleExpiry(identity);
        }
        else
        {
            handler.SslOptions.LocalCertificateSelectionCallback = (_, _, _, _, _) => CurrentClientCertificate();
        }

        return new HttpClient(handler)
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    /// <summary>The TCP connect, bounded by the failover timeout: a replica whose host is gone drops the SYN, and waiting for the OS's retries would take minutes.</summary>
    private static async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using var connect = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            connect.CancelAfter(timeout);
            try
            {
                await socket.ConnectAsync(context.DnsEndPoint, connect.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException($"No TCP connection to {context.DnsEndPoint.Host}:{context.DnsEndPoint.Port} within {timeout.TotalMilliseconds:0} ms (Mesh:ControlPlane:FailoverTimeout).");
            }

            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Asks for a certificate with a join token (first issuance, or after expiry).</summary>
    public Task<SignResult> SignWithTokenAsync(string csr, CancellationToken cancellationToken) =>
        SignAsync(csr, _options.ControlPlane.JoinToken, cancellationToken);

    /// <summary>Renews over mTLS: the current certificate authenticates the call.</summary>
    public Task<SignResult> RenewAsync(string csr, CancellationToken cancellationToken) =>
        SignAsync(csr, bearer: null, cancellationToken);

    /// <inheritdoc/>
    string IWorkloadCertificateIssuer.Describe() => CurrentReplica?.ToString() ?? DescribeReplicas();

    /// <inheritdoc/>
    void IWorkloadCertificateIssuer.Prepare() => EnsureInitialBundle();

    /// <inheritdoc/>
    async Task<IssuedWorkloadCertificate> IWorkloadCertificateIssuer.SignAsync(string csrPem, bool useJoinToken, CancellationToken cancellationToken)
    {
        var result = useJoinToken
            ? await SignWithTokenAsync(csrPem, cancellationToken).ConfigureAwait(false)
            : await RenewAsync(csrPem, cancellationToken).ConfigureAwait(false);
        return new IssuedWorkloadCertificate(result.CertificateChain, result.TrustBundle);
    }

    /// <summary>
    /// One long poll: returns when the control service has news past <paramref name="position"/>, or after about
    /// <paramref name="wait"/>. It goes to the replica in use, with the index that replica gave; a poll that another replica
    /// answers starts from index 0 there.
    /// </summary>
    public async Task<(WatchResult Result, WatchPosition Position)> WatchAsync(WatchPosition position, TimeSpan wait, WorkloadReport report, CancellationToken cancellationToken)
    {
        var waitText = ((long)Math.Ceiling(wait.TotalMilliseconds)).ToString(CultureInfo.InvariantCulture) + "ms";

        // The server may add up to wait/16 of jitter; allow that plus a margin before giving up on the replica. A replica
        // that died under the poll is noticed sooner, by the connection's keep-alive pings.
        var limit = wait + (wait / 16) + WatchMargin;
        var (result, replica) = await SendAsync(
            "watch",
            async (http, replica, token) =>
            {
                var index = replica == position.Replica ? position.Index : 0;
                using var request = NewRequest(HttpMethod.Get, new Uri(replica, $"v1/workloads/self/watch?index={index.ToString(CultureInfo.InvariantCulture)}&wait={waitText}"));
                request.Headers.Add("X-Mesh-Instance", report.Instance);
                AddIfSet(request, "X-Mesh-Service-Version", report.ServiceVersion);
                AddIfSet(request, "X-Mesh-Bundle-Version", report.BundleVersion);
                AddIfSet(request, "X-Mesh-Policy-Version", report.PolicyVersion);
                AddIfSet(request, "X-Mesh-Central-Policy-Version", report.CentralPolicyVersion);
                AddIfSet(request, "X-Mesh-Ejected", report.Ejected);
                using var response = await http.SendAsync(request, token).ConfigureAwait(false);
                await ThrowIfRefusedAsync(response, token).ConfigureAwait(false);
                return await response.Content.ReadFromJsonAsync<WatchResult>(token).ConfigureAwait(false)
                    ?? throw new InvalidDataException("The control service answered the watch with an empty body.");
            },
            _ => limit,
            cancellationToken).ConfigureAwait(false);

        // A replica whose policy store has not loaded answers "unknown" (the workload keeps what it holds): ask another next.
        _replicas.Answered(replica, result.CentralPolicyState == "unknown" ? "it does not know this service's central policy (its policy store has not loaded)" : null);
        return (result, new WatchPosition(replica, result.Index));
    }

    /// <summary>Sends the calls on canary routes since the last report (<c>POST /v1/workloads/self/traffic</c>), over mTLS.</summary>
    public async Task ReportTrafficAsync(Routing.CanaryTrafficReport report, CancellationToken cancellationToken)
    {
        var failover = _options.ControlPlane.FailoverTimeout;
        var (_, replica) = await SendAsync(
            "traffic report",
            async (http, replica, token) =>
            {
                using var request = NewRequest(HttpMethod.Post, new Uri(replica, "v1/workloads/self/traffic"));
                request.Content = JsonContent.Create(report);
                using var response = await http.SendAsync(request, token).ConfigureAwait(false);
                await ThrowIfRefusedAsync(response, token).ConfigureAwait(false);
                return true;
            },
            othersLeft => othersLeft ? failover : SignTimeout,
            cancellationToken).ConfigureAwait(false);
        _replicas.Answered(replica);
    }

    /// <summary>
    /// Reads the trust-bundle file now, so a wrong path or a file that is not PEM roots fails startup with an error naming
    /// the setting, and returns what first contact trusts: that file together with the bundle saved by the last run.
    /// </summary>
    public TrustBundle EnsureInitialBundle() => FirstContactBundle();

    public void Dispose() => _http.Dispose();

    private async Task<SignResult> SignAsync(string csr, string? bearer, CancellationToken cancellationToken)
    {
        // A short wait while another replica is left to try: a sign answer takes milliseconds, so a replica that has not
        // answered within the failover timeout is not the one to wait for. The last one gets the full time.
        var failover = _options.ControlPlane.FailoverTimeout;
        var (result, replica) = await SendAsync(
            "sign",
            async (http, replica, token) =>
            {
                using var request = NewRequest(HttpMethod.Post, new Uri(replica, "v1/identity/sign"));
                request.Content = JsonContent.Create(new
                {
                    csr,
                    instance = _options.Service.InstanceId,
                    serviceVersion = _options.Service.Version,
                });
                if (bearer is not null)
                {
                    request.Headers.Authorization = new("Bearer", bearer);
                }

                using var response = await http.SendAsync(request, token).ConfigureAwait(false);
                await ThrowIfRefusedAsync(response, token).ConfigureAwait(false);
                return await response.Content.ReadFromJsonAsync<SignResult>(token).ConfigureAwait(false)
                    ?? throw new InvalidDataException("The control service answered the sign request with an empty body.");
            },
            othersLeft => othersLeft ? failover : SignTimeout,
            cancellationToken).ConfigureAwait(false);
        _replicas.Answered(replica);
        return result;
    }

    /// <summary>
    /// Sends one request to the replicas in turn until one answers: the replica in use first. A refusal that every replica
    /// would give (400, 401, 403: a token, a name, a certificate) ends the call at once; anything else (no connection, a
    /// reset, no answer within <paramref name="timeout"/>, a 5xx, a body that does not parse) moves on to the next replica.
    /// When none answers, the last failure is thrown.
    /// </summary>
    private async Task<(T Result, Uri Replica)> SendAsync<T>(
        string operation,
        Func<HttpClient, Uri, CancellationToken, Task<T>> attempt,
        Func<bool, TimeSpan> timeout,
        CancellationToken cancellationToken)
    {
        var candidates = await _replicas.CandidatesAsync(cancellationToken).ConfigureAwait(false);
        Exception? last = null;
        for (var i = 0; i < candidates.Count; i++)
        {
            var replica = candidates[i];
            var othersLeft = i < candidates.Count - 1;
            var limit = timeout(othersLeft);
            using var attemptTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            attemptTimeout.CancelAfter(limit);
            try
            {
                // MeshKit's own traffic stays out of the app's traces: a long poll every few minutes is not the app's story.
                using var quiet = OpenTelemetry.SuppressInstrumentationScope.Begin();
                return (await attempt(Volatile.Read(ref _http), replica, attemptTimeout.Token).ConfigureAwait(false), replica);
            }
            catch (ControlPlaneRefusedException ex) when (ex.IsPermanent)
            {
                throw;
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                last = ex is OperationCanceledException && attemptTimeout.IsCancellationRequested
                    ? new TimeoutException($"The control service at {replica} did not answer the {operation} request within {limit.TotalMilliseconds:0} ms.", ex)
                    : ex;
                _replicas.Failed(replica, operation, last.Message, othersLeft);
            }
        }

        ExceptionDispatchInfo.Throw(last!);
        return default;
    }

    private static async Task ThrowIfRefusedAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        string? reason = null;
        var detail = response.ReasonPhrase ?? string.Empty;
        try
        {
            var problem = await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken).ConfigureAwait(false);
            if (problem.ValueKind == JsonValueKind.Object)
            {
                reason = problem.TryGetProperty("reason", out var r) ? r.GetString() : null;
                detail = problem.TryGetProperty("detail", out var d) ? d.GetString() ?? detail : detail;
            }
        }
        catch (JsonException)
        {
        }

        throw new ControlPlaneRefusedException(response.StatusCode, reason, detail);
    }

    /// <summary>HTTP/2 when the replica offers it (it does): keep-alive pings exist only there. HTTP/1.1 otherwise.</summary>
    private static HttpRequestMessage NewRequest(HttpMethod method, Uri uri) => new(method, uri)
    {
        Version = HttpVersion.Version20,
        VersionPolicy = HttpVersionPolicy.RequestVersionOrLower,
    };

    private static void AddIfSet(HttpRequestMessage request, string name, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
    }

    private void ScheduleExpiry(WorkloadIdentity identity)
    {
        var left = identity.NotAfter - _time.GetUtcNow();
        _ = Task.Delay(left > TimeSpan.Zero ? left : TimeSpan.Zero, _time).ContinueWith(
            (_, state) =>
            {
                var expired = (WorkloadIdentity)state!;
                if (ReferenceEquals(_identity.Current, expired))
                {
                    var old = Interlocked.Exchange(ref _http, CreateClient(null));
                    _ = Task.Delay(TimeSpan.FromSeconds(30), _time).ContinueWith(static (_, client) => ((HttpClient)client!).Dispose(), old, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                }
            },
            identity,
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }

    private X509Certificate2? CurrentClientCertificate()
    {
        var current = _identity.Current;
        return current is not null && !current.IsExpired(_time.GetUtcNow()) ? current.Certificate : null;
    }

    private bool ValidateServer(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        // The control service is trusted through the mesh's roots: the live bundle once we have one, else the file together
        // with the last bundle the control service sent (saved by an earlier run, or received before a revocation).
        var bundle = _identity.Current?.Bundle ?? FirstContactBundle();
        var result = SvidValidator.Validate(certificate as X509Certificate2, chain?.ChainPolicy.ExtraStore, bundle, _options.TrustDomain, _time.GetUtcNow(), SvidUsage.Server);
        return result.IsValid && result.SpiffeId == _expectedServer;
    }

    private TrustBundle FirstContactBundle()
    {
        var bundle = Volatile.Read(ref _firstContactBundle);
        if (bundle is not null)
        {
            return bundle;
        }

        var configured = _configuredBundle.Value;
        lock (_firstContactGate)
        {
            // The union, not "the newer of the two": bundles carry no order (a version is a content hash, a file's time says
            // when it was copied), and every root in it was either configured by the operator or sent by the control service
            // over a channel those roots authenticated. It only ever vouches for the control service, and only until the first
            // sign answer, whose bundle then counts alone.
            _firstContactBundle ??= _saved.Load() is { } saved ? TrustBundle.Create([.. configured.Roots, .. saved.Roots]) : configured;
            return _firstContactBundle;
        }
    }

    private void Remember(TrustBundle bundle)
    {
        // Renewals raise Changed too; only a new bundle is news.
        if (Interlocked.Exchange(ref _rememberedVersion, bundle.Version) == bundle.Version)
        {
            return;
        }

        _saved.Save(bundle);
        TrustBundle next;
        try
        {
            next = TrustBundle.Create([.. _configuredBundle.Value.Roots, .. bundle.Roots]);
        }
        catch (MeshIdentityException)
        {
            // The configured file was never readable (startup would have failed on it); the received bundle stands alone.
            next = bundle;
        }

        lock (_firstContactGate)
        {
            _firstContactBundle = next;
        }
    }

    private TrustBundle LoadConfiguredBundle()
    {
        var path = _options.ControlPlane.TrustBundlePath!;
        try
        {
            return TrustBundle.FromPem(File.ReadAllText(path));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
            throw new MeshIdentityException($"Mesh:ControlPlane:TrustBundlePath '{path}' could not be read as PEM roots: {ex.Message}", ex);
        }
    }
}
