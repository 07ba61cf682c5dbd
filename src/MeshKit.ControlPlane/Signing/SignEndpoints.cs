using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Serialization;
using MeshKit.ControlPlane.Tokens;
using MeshKit.ControlPlane.Workloads;
using MeshKit.Identity;
using Microsoft.AspNetCore.Http.Features;

namespace MeshKit.ControlPlane.Signing;

/// <summary>The body of <c>POST /v1/identity/sign</c>.</summary>
internal sealed class SignRequest
{
    [JsonPropertyName("csr")]
    public string? Csr { get; set; }

    /// <summary>Optional: an id unique to the workload instance, so that replicas show separately in <c>/v1/workloads</c>.</summary>
    [JsonPropertyName("instance")]
    public string? Instance { get; set; }

    /// <summary>Optional: the workload's own version (its <c>Mesh:Service:Version</c>).</summary>
    [JsonPropertyName("serviceVersion")]
    public string? ServiceVersion { get; set; }
}

/// <summary>The body of a successful sign answer.</summary>
internal sealed record SignResponse(
    [property: JsonPropertyName("spiffeId")] string SpiffeId,
    [property: JsonPropertyName("certificateChain")] string CertificateChain,
    [property: JsonPropertyName("trustBundle")] string TrustBundle,
    [property: JsonPropertyName("trustBundleVersion")] string TrustBundleVersion,
    [property: JsonPropertyName("notAfter")] DateTimeOffset NotAfter);

/// <summary><c>POST /v1/identity/sign</c>: first issuance with a join token, renewal with the current certificate over mTLS.</summary>
internal static partial class SignEndpoints
{
    /// <summary>The largest accepted body; a CSR with one SAN is about 1 kB.</summary>
    public const int MaxBodyBytes = 64 * 1024;

    public static IEndpointRouteBuilder MapSignApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost("/v1/identity/sign", SignAsync);
        endpoints.MapGet("/v1/trust-bundle", (CertificateAuthority.CertificateAuthority ca, HttpContext http) =>
        {
            var bundle = ca.Bundle;
            http.Response.Headers["X-Mesh-Bundle-Version"] = bundle.Version;
            return Results.Text(bundle.Pem, "application/x-pem-file");
        });
        return endpoints;
    }

    private static async Task<IResult> SignAsync(
        HttpContext http,
        CertificateAuthority.CertificateAuthority ca,
        JoinTokenRegistry tokens,
        WorkloadRegistry workloads,
        IdentityRevocations revocations,
        ControlPlaneMetrics metrics,
        TimeProvider time,
        ILoggerFactory loggerFactory)
    {
        var logger = Logger(loggerFactory);
        var refusal = await SignCoreAsync(http, ca, tokens, workloads, revocations, time, logger).ConfigureAwait(false);
        if (refusal.Refusal is { } r)
        {
            metrics.RecordSign(r.Reason);
            LogRefused(logger, r.Status, r.Reason, r.Detail, refusal.Subject ?? "-", http.Connection.RemoteIpAddress?.ToString() ?? "-");
            return Problems.Refuse(r.Status, r.Reason, r.Detail);
        }

        metrics.RecordSign("issued");
        return Results.Json(refusal.Response);
    }

    private static async Task<(SignRefusal? Refusal, SignResponse? Response, string? Subject)> SignCoreAsync(
        HttpContext http,
        CertificateAuthority.CertificateAuthority ca,
        JoinTokenRegistry tokens,
        WorkloadRegistry workloads,
        IdentityRevocations revocations,
        TimeProvider time,
        ILogger logger)
    {
        // 1. Size, before anything is read.
        if (http.Request.ContentLength > MaxBodyBytes)
        {
            return (TooLarge(), null, null);
        }

        var sizeFeature = http.Features.Get<IHttpMaxRequestBodySizeFeature>();
        if (sizeFeature is { IsReadOnly: false })
        {
            sizeFeature.MaxRequestBodySize = MaxBodyBytes;
        }

        // A replica that has never read the revocation lists (shared store down, no copy from an earlier run) cannot tell a
        // revoked identity or token from a good one: it refuses, and the workload retries (another replica, or later).
        if (!revocations.IsKnown || !tokens.IsKnown)
        {
            return (new SignRefusal(StatusCodes.Status503ServiceUnavailable, "revocations-unknown", $"This replica has not read the revocation lists ({revocations.Location}) yet and issues nothing until it has; retry shortly."), null, null);
        }

        // Cut off from Consul for longer than the bound, it may be missing a revocation made through another replica.
        if (!revocations.IsCurrent || !tokens.IsCurrent)
        {
            var confirmed = Older(revocations.ConfirmedAt, tokens.ConfirmedAt);
            return (new SignRefusal(StatusCodes.Status503ServiceUnavailable, "revocations-stale", $"This replica last confirmed the revocation lists with {revocations.Location} at {confirmed?.ToString("O", System.Globalization.CultureInfo.InvariantCulture) ?? "no time"}, longer ago than ControlPlane:Consul:RevocationsMaxStaleness ({revocations.MaxStaleness}); it issues nothing until Consul answers again. Retry, or another replica."), null, null);
        }

        // 2. Who is asking: a current mesh certificate (renewal) or a join token (first issuance).
        var now = time.GetUtcNow();
        SpiffeId? renewingAs = null;
        JoinToken? token = null;
        var clientCertificate = http.Connection.ClientCertificate;
        var bearer = BearerToken.Read(http.Request);
        string? certificateProblem = null;
        if (clientCertificate is not null)
        {
            var validation = SvidValidator.Validate(clientCertificate, Tls.PresentedIntermediates.For(http, ca), ca.Bundle, ca.TrustDomain, now, SvidUsage.Client);
            if (validation.IsValid)
            {
                renewingAs = validation.SpiffeId;
            }
            else
            {
                certificateProblem = validation.Detail;
            }
        }

        if (renewingAs is null)
        {
            if (bearer is null)
            {
                return certificateProblem is null
                    ? (new SignRefusal(StatusCodes.Status401Unauthorized, "credentials-missing", "Send 'Authorization: Bearer <join token>' for a first certificate, or renew over mTLS with the current certificate."), null, null)
                    : (new SignRefusal(StatusCodes.Status401Unauthorized, "client-certificate-invalid", $"The client certificate cannot renew: {certificateProblem} Use the join token instead."), null, null);
            }

            token = tokens.Find(bearer);
            if (token is null)
            {
                return (new SignRefusal(StatusCodes.Status401Unauthorized, "token-unknown", "The join token is not known to this control service."), null, null);
            }

            if (tokens.IsRevoked(token.Name))
            {
                return (new SignRefusal(StatusCodes.Status401Unauthorized, "token-revoked", $"The join token '{token.Name}' has been revoked."), null, null);
            }
        }

        // 3. What is asked for.
        SignRequest? body;
        try
        {
            body = await JsonSerializer.DeserializeAsync<SignRequest>(http.Request.Body, cancellationToken: http.RequestAborted).ConfigureAwait(false);
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return (TooLarge(), null, null);
        }
        catch (JsonException)
        {
            return (new SignRefusal(StatusCodes.Status400BadRequest, "body-malformed", "The body is not valid JSON; send {\"csr\": \"<PEM PKCS#10>\"}."), null, null);
        }

        if (!CsrInspector.TryInspect(body?.Csr, out var csr, out var csrRefusal))
        {
            return (csrRefusal, null, null);
        }

        var id = csr!.SpiffeId;
        if (!string.Equals(id.TrustDomain, ca.TrustDomain, StringComparison.Ordinal))
        {
            return (new SignRefusal(StatusCodes.Status403Forbidden, "wrong-trust-domain", $"'{id}' is not in trust domain '{ca.TrustDomain}'."), null, id.Value);
        }

        // 4. May the caller have it?
        if (revocations.IsRevoked(id.Value, out var revocationReason))
        {
            return (new SignRefusal(StatusCodes.Status403Forbidden, "identity-revoked", $"'{id}' is revoked: {revocationReason}"), null, id.Value);
        }

        if (renewingAs is not null)
        {
            if (renewingAs != id)
            {
                return (new SignRefusal(StatusCodes.Status403Forbidden, "renewal-identity-mismatch", $"A certificate for '{renewingAs}' can only renew '{renewingAs}', not '{id}'."), null, id.Value);
            }
        }
        else if (string.Equals(id.Namespace, SpiffeId.ReservedNamespace, StringComparison.Ordinal))
        {
            return (new SignRefusal(StatusCodes.Status403Forbidden, "reserved-namespace", $"The namespace '{SpiffeId.ReservedNamespace}' is reserved for the control service and never granted."), null, id.Value);
        }
        else if (!token!.Allows(id.Namespace, id.Service))
        {
            return (new SignRefusal(StatusCodes.Status403Forbidden, "not-granted", $"The join token '{token.Name}' does not grant '{id.Namespace}/{id.Service}'."), null, id.Value);
        }

        // 5. Issue.
        var issued = ca.Issue(id, csr.PublicKey);
        var notAfter = issued.NotAfter;
        var instance = Truncate(body!.Instance, 128);
        var previous = workloads.Find(id.Value, instance);
        workloads.Record(new WorkloadStatus
        {
            SpiffeId = id.Value,
            Instance = instance,
            CertificateSerial = issued.SerialNumber,
            NotAfter = notAfter,
            NotBefore = issued.NotBefore,
            CertificateIssuer = issued.Issuer,
            BundleVersion = previous?.BundleVersion,
            PolicyVersion = previous?.PolicyVersion,
            CentralPolicyVersion = previous?.CentralPolicyVersion,
            EjectedEndpoints = previous?.EjectedEndpoints,
            ServiceVersion = Truncate(body.ServiceVersion, 64) ?? previous?.ServiceVersion,
            LastSeen = now,
        });
        LogIssued(logger, id.Value, issued.SerialNumber, notAfter, renewingAs is not null ? "renewal" : $"token '{token!.Name}'");
        return (null, new SignResponse(id.Value, issued.ChainPem, issued.Bundle.Pem, issued.Bundle.Version, notAfter), id.Value);
    }

    // LoggerFactory.CreateLogger takes a lock on every call: the logger is kept per factory (tests run several hosts).
    private static CategoryLogger? s_logger;

    private static ILogger Logger(ILoggerFactory factory)
    {
        var cached = Volatile.Read(ref s_logger);
        if (cached is null || !ReferenceEquals(cached.Factory, factory))
        {
            cached = new CategoryLogger(factory, factory.CreateLogger("MeshKit.ControlPlane.Signing"));
            Volatile.Write(ref s_logger, cached);
        }

        return cached.Logger;
    }

    private sealed record CategoryLogger(ILoggerFactory Factory, ILogger Logger);

    private static DateTimeOffset? Older(DateTimeOffset? a, DateTimeOffset? b) => a is null || b is null ? null : (a < b ? a : b);

    private static SignRefusal TooLarge() =>
        new(StatusCodes.Status413PayloadTooLarge, "body-too-large", $"The body is larger than {MaxBodyBytes} bytes; a CSR is about 1 kB.");

    private static string? Truncate(string? value, int max) =>
        string.IsNullOrEmpty(value) ? null : value.Length <= max ? value : value[..max];

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Issued a certificate to {SpiffeId} (serial {Serial}, valid until {NotAfter:O}), authenticated by {Credential}.")]
    private static partial void LogIssued(ILogger logger, string spiffeId, string serial, DateTimeOffset notAfter, string credential);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Warning, Message = "Refused a sign request with {Status} {Reason}: {Detail} (requested {Requested}, from {RemoteAddress}).")]
    private static partial void LogRefused(ILogger logger, int status, string reason, string detail, string requested, string remoteAddress);
}
