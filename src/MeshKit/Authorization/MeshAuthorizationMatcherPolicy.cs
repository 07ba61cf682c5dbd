using MeshKit.Policy;
using MeshKit.Server;
using MeshKit.Telemetry;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Matching;
using Microsoft.Extensions.Logging;

namespace MeshKit.Authorization;

/// <summary>
/// Enforces <c>Mesh:Authorization</c> during routing, on the endpoint routing chose, for every kind of endpoint (minimal
/// APIs, controllers, pages) and whatever other authorization the app has. A denied request is routed to an endpoint that
/// answers 403 with a machine-readable reason; a rate-limited one to an endpoint that answers 429. Matching the routed
/// endpoint's template, not the raw path, means <c>%2F</c>, <c>..</c>, <c>//</c> and case variants cannot slip past a rule.
/// </summary>
internal sealed class MeshAuthorizationMatcherPolicy(
    PolicyWatcher policies,
    MeshAuthorizer authorizer) : MatcherPolicy, IEndpointSelectorPolicy
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> NormalizedTemplates = new(StringComparer.Ordinal);

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

        // Routing runs the valid candidate with the best (lowest) score: only its decision is recorded. Every other valid
        // candidate is decided too, quietly, so a denied one cannot run unchecked if a later policy drops the best.
        var best = -1;
        for (var i = 0; i < candidates.Count; i++)
        {
            if (candidates.IsValidCandidate(i) && (best < 0 || candidates[i].Score < candidates[best].Score))
            {
                best = i;
            }
        }

        for (var i = 0; i < candidates.Count; i++)
        {
            if (!candidates.IsValidCandidate(i))
            {
                continue;
            }

            var candidate = candidates[i];
            // A route template is normalised once (templates are few); an endpoint without one is decided by its path.
            var byPath = candidate.Endpoint is not RouteEndpoint { RoutePattern.RawText: not null };
            var target = byPath
                ? MeshAuthorizationEvaluator.Normalize(httpContext.Request.Path.Value ?? "/")
                : NormalizedTemplates.GetOrAdd(((RouteEndpoint)candidate.Endpoint).RoutePattern.RawText!, MeshAuthorizationEvaluator.Normalize);
            var refusal = i == best
                ? authorizer.Decide(httpContext, authorization, caller, target, byPath)
                : authorizer.DecideQuietly(httpContext, authorization, caller, target, byPath);
            if (refusal is not null)
            {
                candidates.ReplaceEndpoint(i, Refusal(refusal), candidate.Values);
            }
        }

        return Task.CompletedTask;
    }

    /// <summary>Whether the endpoint is a refusal this policy routed a request to.</summary>
    internal static bool IsRefusal(Endpoint endpoint) => ReferenceEquals(endpoint.Metadata, RefusalMetadata);

    private static Endpoint Refusal(MeshRefusal refusal) =>
        new(refusal.WriteAsync, RefusalMetadata, $"MeshKit refusal ({refusal.Reason})");

    private sealed class RefusalMarker;
}
