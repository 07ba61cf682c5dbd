using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Serialization;
using MeshKit.ControlPlane.Workloads;
using MeshKit.Identity;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Options;

namespace MeshKit.ControlPlane.ControlChannel;

/// <summary>One answer of the control-channel watch.</summary>
internal sealed record WatchResponse(
    [property: JsonPropertyName("index")] long Index,
    [property: JsonPropertyName("trustBundle")] string TrustBundle,
    [property: JsonPropertyName("trustBundleVersion")] string TrustBundleVersion,
    [property: JsonPropertyName("revoked")] bool Revoked,
    [property: JsonPropertyName("revocationReason")] string? RevocationReason,
    [property: JsonPropertyName("policy")] System.Text.Json.JsonElement? Policy,
    [property: JsonPropertyName("policyVersion")] string? PolicyVersion,
    [property: JsonPropertyName("activeIssuer")] string ActiveIssuer,
    [property: JsonPropertyName("policyState")] string PolicyState,
    [property: JsonPropertyName("policyRevision")] ulong PolicyRevision,
    [property: JsonPropertyName("revokedIdentities")] IReadOnlyCollection<string> RevokedIdentities);

/// <summary>
/// <c>GET /v1/workloads/self/watch?index=N&amp;wait=30s</c>: the workload's long poll, authenticated by its certificate.
/// Answers at once when the caller's index is not the current one, else when something changes or after the wait
/// (plus up to wait/16 of jitter, as Consul does). Every poll records the workload's reported status.
/// </summary>
internal static class WatchEndpoints
{
    // A push wakes every watcher of a service at once with the same stored document: it is parsed once, not once per
    // watcher (a cloned element is immutable and safe to read from many threads). Keyed by the document object itself.
    private static readonly ConditionalWeakTable<Policy.StoredPolicy, StrongBox<System.Text.Json.JsonElement>> ParsedPolicies = [];

    public static IEndpointRouteBuilder MapControlChannel(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/v1/workloads/self/watch", WatchAsync);
        return endpoints;
    }

    private static async Task<IResult> WatchAsync(
        HttpContext http,
        CertificateAuthority.CertificateAuthority ca,
        ControlChannelFeed feed,
        WorkloadRegistry workloads,
        IdentityRevocations revocations,
        IOptions<ControlPlaneOptions> options,
        Policy.CentralPolicy central,
        ControlPlaneMetrics metrics,
        TimeProvider time,
        IHostApplicationLifetime lifetime)
    {
        metrics.RecordWatch();

        // A replica that is stopping sends its watchers elsewhere at once (503: the workload moves to another replica), rather
        // than hold their polls until the server's shutdown timeout cuts them.
        if (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            return Stopping();
        }

        var certificate = http.Connection.ClientCertificate;
        if (!TryAuthenticate(http, certificate, ca, time, out var id, out var refusal))
        {
            return refusal;
        }

        var query = http.Request.Query;
        long index = 0;
        if (query.TryGetValue("index", out var indexText) && !long.TryParse(indexText, NumberStyles.None, CultureInfo.InvariantCulture, out index))
        {
            return Problems.Refuse(StatusCodes.Status400BadRequest, "index-invalid", "'index' must be a non-negative integer.");
        }

        var wait = options.Value.MaxWatchWait;
        if (query.TryGetValue("wait", out var waitText))
        {
            if (!TryParseWait(waitText.ToString(), out var asked))
            {
                return Problems.Refuse(StatusCodes.Status400BadRequest, "wait-invalid", "'wait' must be a duration such as 500ms, 30s or 5m.");
            }

            wait = asked < wait ? asked : wait;
        }

        Record(http, workloads, id, certificate!, ca, time);

        // Consul adds up to wait/16 of jitter so that many watchers do not return in step.
        var jittered = wait + TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * wait.TotalMilliseconds / 16);
        using var waiting = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, lifetime.ApplicationStopping);
        try
        {
            await feed.WaitAsync(index, jittered, time, waiting.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            return Results.Empty;
        }
        catch (OperationCanceledException) when (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            return Stopping();
        }

        var bundle = ca.Bundle;
        var revoked = revocations.IsRevoked(id.Value, out var reason);
        var current = feed.Index;

        // "unknown" (the store has not loaded) and "absent" make the workload keep what it holds; only "deleted", with a
        // revision newer than the workload's document, makes it drop its central policy.
        var answer = central.Lookup(Policy.PolicyDocument.ServiceKey(id));
        var policy = answer.Document;
        System.Text.Json.JsonElement? policyJson = policy is null ? null : ParsedPolicies.GetValue(policy, static p => new(System.Text.Json.JsonDocument.Parse(p.Json).RootElement.Clone())).Value;
        http.Response.Headers["X-Mesh-Index"] = current.ToString(CultureInfo.InvariantCulture);
        return Results.Json(new WatchResponse(
            current, bundle.Pem, bundle.Version, revoked, revoked ? reason : null, policyJson, policy?.Version, ca.Trust.IssuingRoot.Subject,
            StateName(answer.State), answer.Revision, revocations.RevokedIds));
    }

    private static IResult Stopping() =>
        Problems.Refuse(StatusCodes.Status503ServiceUnavailable, "replica-stopping", "This control-service replica is stopping; watch another replica.");

    /// <summary>
    /// Validates the client certificate with a full chain build against the bundle, once per connection and bundle
    /// version: a watcher keeps its connection between polls, and a chain build costs about 0.1 ms of CPU.
    /// </summary>
    internal static bool TryAuthenticate(
        HttpContext http,
        X509Certificate2? certificate,
        CertificateAuthority.CertificateAuthority ca,
        TimeProvider time,
        [NotNullWhen(true)] out SpiffeId? id,
        [NotNullWhen(false)] out IResult? refusal)
    {
        var now = time.GetUtcNow();
        var bundle = ca.Bundle;
        var items = http.Features.Get<IConnectionItemsFeature>()?.Items;
        object? value = null;
        if (items is not null)
        {
            // HTTP/2 streams of one connection share its items and may run at once.
            lock (items)
            {
                items.TryGetValue(typeof(ValidatedWatcher), out value);
            }
        }

        if (certificate is not null
            && value is ValidatedWatcher cached
            && ReferenceEquals(cached.Certificate, certificate)
            && cached.BundleVersion == bundle.Version
            && now < cached.NotAfter)
        {
            id = cached.Id;
            refusal = null;
            return true;
        }

        var validation = SvidValidator.Validate(certificate, Tls.PresentedIntermediates.For(http, ca), bundle, ca.TrustDomain, now, SvidUsage.Client);
        if (!validation.IsValid)
        {
            id = null;
            refusal = Problems.Refuse(StatusCodes.Status401Unauthorized, "client-certificate-invalid", $"The watch is authenticated by the workload certificate: {validation.Detail}");
            return false;
        }

        id = validation.SpiffeId!;
        if (items is not null)
        {
            var validated = new ValidatedWatcher(certificate!, bundle.Version, new DateTimeOffset(certificate!.NotAfter.ToUniversalTime(), TimeSpan.Zero), id);
            lock (items)
            {
                items[typeof(ValidatedWatcher)] = validated;
            }
        }

        refusal = null;
        return true;
    }

    private sealed record ValidatedWatcher(X509Certificate2 Certificate, string BundleVersion, DateTimeOffset NotAfter, SpiffeId Id);

    private static void Record(HttpContext http, WorkloadRegistry workloads, SpiffeId id, X509Certificate2 certificate, CertificateAuthority.CertificateAuthority ca, TimeProvider time)
    {
        var headers = http.Request.Headers;
        string? Header(string name, int max)
        {
            var value = headers[name].ToString();
            return string.IsNullOrEmpty(value) ? null : value.Length <= max ? value : value[..max];
        }

        workloads.Record(new WorkloadStatus
        {
            SpiffeId = id.Value,
            Instance = Header("X-Mesh-Instance", 128),
            CertificateSerial = certificate.SerialNumber,
            NotAfter = new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero),
            NotBefore = new DateTimeOffset(certificate.NotBefore.ToUniversalTime(), TimeSpan.Zero),
            CertificateIssuer = certificate.Issuer,
            BundleVersion = Header("X-Mesh-Bundle-Version", 64),
            PolicyVersion = Header("X-Mesh-Policy-Version", 64),
            CentralPolicyVersion = Header("X-Mesh-Central-Policy-Version", 64),
            EjectedEndpoints = Header("X-Mesh-Ejected", 1024),
            ServiceVersion = Header("X-Mesh-Service-Version", 64),
            LastSeen = time.GetUtcNow(),
        });
    }

    private static string StateName(Policy.CentralPolicyState state) => state switch
    {
        Policy.CentralPolicyState.Present => "present",
        Policy.CentralPolicyState.Absent => "absent",
        Policy.CentralPolicyState.Deleted => "deleted",
        _ => "unknown",
    };

    internal static bool TryParseWait(string text, out TimeSpan wait)
    {
        wait = default;
        var (number, scale) = text switch
        {
            _ when text.EndsWith("ms", StringComparison.Ordinal) => (text[..^2], 1.0),
            _ when text.EndsWith('s') => (text[..^1], 1000.0),
            _ when text.EndsWith('m') => (text[..^1], 60_000.0),
            _ when text.EndsWith('h') => (text[..^1], 3_600_000.0),
            _ => (text, 1000.0),
        };
        if (!double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value) || value < 0 || value > 1e9)
        {
            return false;
        }

        wait = TimeSpan.FromMilliseconds(value * scale);
        return true;
    }
}
