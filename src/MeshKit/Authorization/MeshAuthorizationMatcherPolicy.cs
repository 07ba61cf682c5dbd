using MeshKit.Policy;
using MeshKit.Server;
using MeshKit.Telemetry;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Matching;
using Microsoft.Extensions.Logging;

namespace MeshKit.Authorization;

/// <summary>What mesh authorization decided for a request, for telemetry and diagnostics.</summary>
public interface IMeshAuthorizationFeature
{
    /// <summary>Gets the decision.</summary>
    AuthorizationDecision Decision { get; }
}

/// <summary>
/// Enforces <c>Mesh:Authorization</c> during routing, on the endpoint routing chose, for every kind of endpoint (minimal
/// APIs, controllers, pages) and whatever other authorization the app has. A denied request is routed to an endpoint that
/// answers 403 with a machine-readable reason; a rate-limited one to an endpoint that answers 429. Matching the routed
/// endpoint's template, not the raw path, means <c>%2F</c>, <c>..</c>, <c>//</c> and case variants cannot slip past a rule.
/// </summary>
internal sealed partial class MeshAuthorizationMatcherPolicy(
    PolicyWatcher policies,
    MeshRateLimits rateLimits,
    MeshMetrics metrics,
    ILogger<MeshAuthorizationMatcherPolicy> logger) : MatcherPolicy, IEndpointSelectorPolicy
{
    // Marks the endpoints this policy routes refused requests to (MeshAuthorizationGate answers them early).
    private static readonly EndpointMetadataCollection RefusalMetadata = new(new RefusalMarker());

    // After the framework's own policies (HTTP method, host, ...), so only the endpoint that will run is checked.
    public override int Order => int.MaxValue - 1000;

    public bool AppliesToEndpoints(IReadOnlyList<Endpoint> endpoints) => true;

    public Task ApplyAsync(HttpContext httpContext, CandidateSet candidates)
    {
        var authorization = policies.Current.Authorization;
        if (!authorization.Enabled)
        {
            return Task.CompletedTask;
        }

        // Tells MeshAuthorizationGate that routing has run for this request, even if no candidate turns out valid.
        httpContext.Features.Set(MeshAuthorizationGate.RoutingRanFeature.Instance);
        var caller = httpContext.Features.Get<IMeshPeerFeature>()?.SpiffeId;
        var method = httpContext.Request.Method;
        for (var i = 0; i < candidates.Count; i++)
        {
            if (!candidates.IsValidCandidate(i))
            {
                continue;
            }

            var candidate = candidates[i];
            var target = candidate.Endpoint is RouteEndpoint route && route.RoutePattern.RawText is { } template
                ? MeshAuthorizationEvaluator.Normalize(template)
                : MeshAuthorizationEvaluator.Normalize(httpContext.Request.Path.Value ?? "/");
            var decision = MeshAuthorizationEvaluator.Evaluate(authorization, caller, method, target);
            httpContext.Features.Set<IMeshAuthorizationFeature>(new DecisionFeature(decision));
            if (httpContext.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpActivityFeature>()?.Activity is { IsAllDataRequested: true } activity)
            {
                activity.SetTag(MeshTelemetry.Attributes.AuthorizationDecision, decision.Allowed ? "allow" : "deny");
                activity.SetTag(MeshTelemetry.Attributes.AuthorizationRule, decision.RuleName);
            }

            if (!decision.Allowed)
            {
                metrics.RecordAuthorizationDenial(decision.RuleName);
                LogDenied(logger, caller?.Value ?? "(no mesh identity)", method, target, decision.RuleName, decision.Reason);
                candidates.ReplaceEndpoint(i, Refusal(StatusCodes.Status403Forbidden, "mesh_authorization_denied", decision.Reason, null), candidate.Values);
                continue;
            }

            if (decision.Rule is { RateLimit: not null } rule)
            {
                var key = MeshRateLimits.CallerKey(caller, httpContext);
                if (!rateLimits.TryAdmit(rule, key, out var retryAfter, out var refusal))
                {
                    metrics.RecordRateLimited(decision.RuleName);
                    LogRateLimited(logger, key.ToString() ?? "unknown", decision.RuleName);
                    candidates.ReplaceEndpoint(i, Refusal(StatusCodes.Status429TooManyRequests, "mesh_rate_limited", refusal, retryAfter), candidate.Values);
                }
            }
        }

        return Task.CompletedTask;
    }

    /// <summary>Whether the endpoint is a refusal this policy routed a request to.</summary>
    internal static bool IsRefusal(Endpoint endpoint) => ReferenceEquals(endpoint.Metadata, RefusalMetadata);

    private static Endpoint Refusal(int status, string reason, string detail, TimeSpan? retryAfter) =>
        new(
            context =>
            {
                if (retryAfter is { } after)
                {
                    context.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(after.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
                }

                return MeshProblem.WriteAsync(context, status, reason, detail);
            },
            RefusalMetadata,
            $"MeshKit refusal ({reason})");

    [LoggerMessage(EventId = 7001, Level = LogLevel.Warning, Message = "Denied {Caller} {Method} {Target} (rule {Rule}): {Reason}")]
    private static partial void LogDenied(ILogger logger, string caller, string method, string target, string rule, string reason);

    [LoggerMessage(EventId = 7002, Level = LogLevel.Information, Message = "Rate-limited {Caller} under rule {Rule}.")]
    private static partial void LogRateLimited(ILogger logger, string caller, string rule);

    private sealed class RefusalMarker;

    private sealed class DecisionFeature(AuthorizationDecision decision) : IMeshAuthorizationFeature
    {
        public AuthorizationDecision Decision { get; } = decision;
    }
}
