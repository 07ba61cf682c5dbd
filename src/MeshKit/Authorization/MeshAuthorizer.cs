using MeshKit.Identity;
using MeshKit.Server;
using MeshKit.Telemetry;
using MeshKit.Transport;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace MeshKit.Authorization;

/// <summary>A refusal of mesh authorization: what to answer, and when the caller may try again.</summary>
/// <param name="Status">403 or 429.</param>
/// <param name="Reason">The machine-readable reason.</param>
/// <param name="Detail">Who, what and why, in a sentence.</param>
/// <param name="RetryAfter">For 429, when a permit is likely.</param>
internal sealed record MeshRefusal(int Status, string Reason, string Detail, TimeSpan? RetryAfter)
{
    /// <summary>
    /// Writes the refusal: to a gRPC call, in gRPC's terms (<see cref="GrpcRefusal"/>); otherwise as problem+json, with
    /// <c>Retry-After</c> for 429.
    /// </summary>
    public Task WriteAsync(HttpContext context)
    {
        if (GrpcRefusal.IsGrpc(context.Request))
        {
            return GrpcRefusal.WriteAsync(context, Status, Reason, Detail, RetryAfter);
        }

        if (RetryAfter is { } after)
        {
            context.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(after.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return MeshProblem.WriteAsync(context, Status, Reason, Detail);
    }
}

/// <summary>
/// Decides one request against <c>Mesh:Authorization</c>: evaluates the rules for a target (the routed endpoint's template,
/// or the normalised path of a request no endpoint serves), records the decision (feature and span tags), counts and logs
/// a denial, and takes a rate-limit permit. The routing-time check (<see cref="MeshAuthorizationMatcherPolicy"/>) and the
/// check of unrouted requests (<see cref="MeshAuthorizationGate"/>) both decide through this, so they cannot drift apart.
/// </summary>
internal sealed partial class MeshAuthorizer(MeshRateLimits rateLimits, MeshMetrics metrics, ILogger<MeshAuthorizer> logger)
{
    /// <summary>Decides; <see langword="null"/> when the request may go on.</summary>
    /// <param name="context">The request.</param>
    /// <param name="authorization">The rules in force.</param>
    /// <param name="caller">The caller's mesh identity, if any.</param>
    /// <param name="target">The normalised template or path the rules are matched against.</param>
    /// <param name="byPath">Whether the target is the request's path (no endpoint), recorded with the decision.</param>
    public MeshRefusal? Decide(HttpContext context, MeshAuthorizationPolicy authorization, SpiffeId? caller, string target, bool byPath)
    {
        var method = context.Request.Method;
        var feature = Decided(authorization, caller, method, target, byPath);
        var decision = feature.Decision;
        return Record(context, feature, decision, caller, method, target);
    }

    /// <summary>
    /// Decides a candidate endpoint that routing will not run while a better one stays valid (Grpc.AspNetCore's catch-all
    /// "unimplemented" endpoints beside every method): a denial still replaces it, so it cannot run unchecked, but nothing
    /// is recorded (no span tags, feature, log or count) and no rate-limit permit is taken. Only the endpoint that runs
    /// records its decision.
    /// </summary>
    public MeshRefusal? DecideQuietly(HttpContext context, MeshAuthorizationPolicy authorization, SpiffeId? caller, string target, bool byPath)
    {
        var decision = Decided(authorization, caller, context.Request.Method, target, byPath).Decision;
        return decision.Allowed ? null : new MeshRefusal(StatusCodes.Status403Forbidden, MeshCallReasons.MeshAuthorizationDenied, decision.Reason, null);
    }

    private MeshRefusal? Record(HttpContext context, DecisionFeature feature, AuthorizationDecision decision, SpiffeId? caller, string method, string target)
    {
        context.Features.Set<IMeshAuthorizationFeature>(feature);
        if (ServerSpan.Recorded(context) is { } activity)
        {
            activity.SetTag(MeshTelemetry.Attributes.AuthorizationDecision, decision.Allowed ? "allow" : "deny");
            activity.SetTag(MeshTelemetry.Attributes.AuthorizationRule, decision.RuleName);
        }

        if (!decision.Allowed)
        {
            metrics.RecordAuthorizationDenial(decision.RuleName);
            LogDenied(logger, caller?.Value ?? "(no mesh identity)", method, target, decision.RuleName, decision.Reason);
            return new MeshRefusal(StatusCodes.Status403Forbidden, MeshCallReasons.MeshAuthorizationDenied, decision.Reason, null);
        }

        if (decision.Rule is { RateLimit: not null } rule)
        {
            var key = MeshRateLimits.CallerKey(caller, context);
            if (!rateLimits.TryAdmit(rule, key, out var retryAfter, out var refusal))
            {
                metrics.RecordRateLimited(decision.RuleName);
                LogRateLimited(logger, key.ToString() ?? "unknown", decision.RuleName);
                return new MeshRefusal(StatusCodes.Status429TooManyRequests, MeshCallReasons.MeshRateLimited, refusal, retryAfter);
            }
        }

        return null;
    }

    /// <summary>
    /// The decision for (caller, method, target) under these rules: evaluated once and then served from a cache, since
    /// the inputs repeat (a caller calls the same endpoints) and a decision carries a formatted reason. Only routed
    /// targets (route templates, a finite set) are cached, and at most <see cref="MaxCachedDecisions"/> of them per policy;
    /// a new policy starts a new cache.
    /// </summary>
    private DecisionFeature Decided(MeshAuthorizationPolicy authorization, SpiffeId? caller, string method, string target, bool byPath)
    {
        if (byPath)
        {
            return new DecisionFeature(MeshAuthorizationEvaluator.Evaluate(authorization, caller, method, target), byPath: true);
        }

        var cache = _cache;
        if (!ReferenceEquals(cache.Policy, authorization))
        {
            cache = new DecisionCache(authorization);
            _cache = cache;
        }

        var key = (caller?.Value, method, target);
        if (cache.Decisions.TryGetValue(key, out var cached))
        {
            return cached;
        }

        var feature = new DecisionFeature(MeshAuthorizationEvaluator.Evaluate(authorization, caller, method, target), byPath: false);
        if (cache.Decisions.Count < MaxCachedDecisions)
        {
            cache.Decisions.TryAdd(key, feature);
        }

        return feature;
    }

    private const int MaxCachedDecisions = 10_000;
    private volatile DecisionCache _cache = new(null);

    private sealed class DecisionCache(MeshAuthorizationPolicy? policy)
    {
        public MeshAuthorizationPolicy? Policy { get; } = policy;

        public System.Collections.Concurrent.ConcurrentDictionary<(string? Caller, string Method, string Target), DecisionFeature> Decisions { get; } = new();
    }

    [LoggerMessage(EventId = 7001, Level = LogLevel.Warning, Message = "Denied {Caller} {Method} {Target} (rule {Rule}): {Reason}")]
    private static partial void LogDenied(ILogger logger, string caller, string method, string target, string rule, string reason);

    [LoggerMessage(EventId = 7002, Level = LogLevel.Information, Message = "Rate-limited {Caller} under rule {Rule}.")]
    private static partial void LogRateLimited(ILogger logger, string caller, string rule);

    /// <summary>The decision on the request's features; <see cref="ByPath"/> tells a decision on the path from one on an endpoint.</summary>
    internal sealed class DecisionFeature(AuthorizationDecision decision, bool byPath) : IMeshAuthorizationFeature
    {
        public AuthorizationDecision Decision { get; } = decision;

        public bool ByPath { get; } = byPath;
    }
}
