using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Serialization;
using MeshKit.Hosting;
using MeshKit.Identity;
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
/// MeshKit's own client of the control service: HTTPS that trusts only the mesh's roots and only the control
/// service's identity (<c>spiffe://&lt;td&gt;/ns/mesh-system/svc/control-plane</c>), presenting the workload certificate when
/// there is a valid one. It is not an <c>IHttpClientFactory</c> client, so no app-wide handler touches it.
/// </summary>
internal sealed class ControlPlaneClient : IDisposable
{
    private const string ControlPlaneService = "control-plane";
    private HttpClient _http;
    private readonly WorkloadIdentitySource _identity;
    private readonly TimeProvider _time;
    private readonly MeshOptions _options;
    private readonly SpiffeId _expectedServer;
    private readonly SavedTrustBundle _saved;
    private readonly Lazy<TrustBundle> _configuredBundle;
    private readonly Lock _firstContactGate = new();
    private TrustBundle? _firstContactBundle;
    private string? _rememberedVersion;

    public ControlPlaneClient(IOptions<MeshOptions> options, WorkloadIdentitySource identity, SavedTrustBundle saved, TimeProvider time)
    {
        _options = options.Value;
        _identity = identity;
        _saved = saved;
        _time = time;
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

    private HttpClient CreateClient(WorkloadIdentity? identity)
    {
        var lifetime = identity is null ? TimeSpan.FromMinutes(1) : identity.Lifetime / 4;
        var handler = new SocketsHttpHandler
        {
            // Pooled, so a long poll that returns is followed at once by the next on the same connection; capped well
            // below the certificate's lifetime, and replaced when the certificate changes.
            PooledConnectionLifetime = lifetime < TimeSpan.FromMinutes(1) ? lifetime : TimeSpan.FromMinutes(1),
            ConnectTimeout = TimeSpan.FromSeconds(10),
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = ValidateServer,
                LocalCertificateSelectionCallback = (_, _, _, _, _) => CurrentClientCertificate(),
            },
        };
        return new HttpClient(handler)
        {
            BaseAddress = _options.ControlPlane.Address,
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    /// <summary>Asks for a certificate with a join token (first issuance, or after expiry).</summary>
    public Task<SignResult> SignWithTokenAsync(string csr, CancellationToken cancellationToken) =>
        SignAsync(csr, _options.ControlPlane.JoinToken, cancellationToken);

    /// <summary>Renews over mTLS: the current certificate authenticates the call.</summary>
    public Task<SignResult> RenewAsync(string csr, CancellationToken cancellationToken) =>
        SignAsync(csr, bearer: null, cancellationToken);

    /// <summary>One long poll: returns when the control service has news past <paramref name="index"/>, or after about <paramref name="wait"/>.</summary>
    public async Task<(WatchResult Result, long Index)> WatchAsync(long index, TimeSpan wait, WorkloadReport report, CancellationToken cancellationToken)
    {
        var waitText = ((long)Math.Ceiling(wait.TotalMilliseconds)).ToString(CultureInfo.InvariantCulture) + "ms";
        using var request = new HttpRequestMessage(HttpMethod.Get, $"v1/workloads/self/watch?index={index.ToString(CultureInfo.InvariantCulture)}&wait={waitText}");
        request.Headers.Add("X-Mesh-Instance", report.Instance);
        AddIfSet(request, "X-Mesh-Service-Version", report.ServiceVersion);
        AddIfSet(request, "X-Mesh-Bundle-Version", report.BundleVersion);
        AddIfSet(request, "X-Mesh-Policy-Version", report.PolicyVersion);
        AddIfSet(request, "X-Mesh-Central-Policy-Version", report.CentralPolicyVersion);
        AddIfSet(request, "X-Mesh-Ejected", report.Ejected);

        // The server may add up to wait/16 of jitter; allow that plus a margin before giving up on the request.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(wait + (wait / 16) + TimeSpan.FromSeconds(10));

        // MeshKit's own traffic stays out of the app's traces: a long poll every few minutes is not the app's story.
        using var quiet = OpenTelemetry.SuppressInstrumentationScope.Begin();
        using var response = await _http.SendAsync(request, timeout.Token).ConfigureAwait(false);
        await ThrowIfRefusedAsync(response, timeout.Token).ConfigureAwait(false);
        var result = await response.Content.ReadFromJsonAsync<WatchResult>(timeout.Token).ConfigureAwait(false)
            ?? throw new InvalidDataException("The control service answered the watch with an empty body.");
        return (result, result.Index);
    }

    /// <summary>
    /// Reads the trust-bundle file now, so a wrong path or a file that is not PEM roots fails startup with an error naming
    /// the setting, and returns what first contact trusts: that file together with the bundle saved by the last run.
    /// </summary>
    public TrustBundle EnsureInitialBundle() => FirstContactBundle();

    public void Dispose() => _http.Dispose();

    private async Task<SignResult> SignAsync(string csr, string? bearer, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/identity/sign")
        {
            Content = JsonContent.Create(new
            {
                csr,
                instance = _options.Service.InstanceId,
                serviceVersion = _options.Service.Version,
            }),
        };
        if (bearer is not null)
        {
            request.Headers.Authorization = new("Bearer", bearer);
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        using var quiet = OpenTelemetry.SuppressInstrumentationScope.Begin();
        using var response = await _http.SendAsync(request, timeout.Token).ConfigureAwait(false);
        await ThrowIfRefusedAsync(response, timeout.Token).ConfigureAwait(false);
        return await response.Content.ReadFromJsonAsync<SignResult>(timeout.Token).ConfigureAwait(false)
            ?? throw new InvalidDataException("The control service answered the sign request with an empty body.");
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

    private static void AddIfSet(HttpRequestMessage request, string name, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
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
