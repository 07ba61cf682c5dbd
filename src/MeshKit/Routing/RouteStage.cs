using System.Net;
using System.Net.Http.Headers;
using MeshKit.Policy;

namespace MeshKit.Routing;

/// <summary>What the route stage decided for one call: the route, the subset and why, and whether to mirror it.</summary>
/// <param name="Route">The route the call matched (the destination's default route when none did).</param>
/// <param name="Subset">The subset the call goes to, or <see langword="null"/> for every endpoint.</param>
/// <param name="SubsetReason">Why: <c>split</c>, <c>header</c> or <c>none</c>.</param>
/// <param name="Mirror">Whether a copy goes to the route's mirror subset.</param>
internal readonly record struct RouteDecision(RoutePolicy Route, string? Subset, string SubsetReason, bool Mirror);

/// <summary>What a route's fault injection drew for one call.</summary>
/// <param name="Delay">How long to hold the call first (zero for none).</param>
/// <param name="AbortStatus">The status to answer instead of calling, or 0 to call.</param>
internal readonly record struct FaultDecision(TimeSpan Delay, int AbortStatus);

/// <summary>
/// The route stage of one destination under one policy: matches a call (path, method, headers), picks its subset (the
/// tester's override header, else the weighted split) and decides mirroring and faults. Synchronous, allocation-free:
/// its inputs are the request and the policy, its output a <see cref="RouteDecision"/>. The draws come from the mesh's
/// <see cref="MeshRandom"/>, in a fixed order (split, mirror, then the fault's delay and abort).
/// </summary>
internal sealed class RouteStage(string? subsetHeader, DestinationPolicy policy, MeshRandom random)
{
    /// <summary>Gets the destination's policy this stage routes by.</summary>
    public DestinationPolicy Policy { get; } = policy;

    public RouteDecision Decide(HttpRequestMessage request)
    {
        var headers = new RequestHeaders(request.Headers);
        var route = RouteMatcher.Match(Policy, request.Method.Method, request.RequestUri!.AbsolutePath, headers) ?? RouteMatcher.DefaultRoute(Policy);
        var subset = SubsetSelector.Select(subsetHeader, route, headers, route.Split is { } split ? random.Next(split.Total) : 0);
        var mirror = route.Mirror is { } mirrorPolicy && (mirrorPolicy.Percent >= 100 || random.NextDouble() * 100 < mirrorPolicy.Percent);
        return new RouteDecision(route, subset.Subset, subset.Reason, mirror);
    }

    /// <summary>Draws the route's fault for one call (delay first, then abort).</summary>
    public FaultDecision DrawFault(FaultPolicy fault)
    {
        var delay = fault.DelayPercent > 0 && random.NextDouble() * 100 < fault.DelayPercent ? fault.Delay : TimeSpan.Zero;
        var abort = fault.AbortPercent > 0 && random.NextDouble() * 100 < fault.AbortPercent ? fault.AbortStatus : 0;
        return new FaultDecision(delay, abort);
    }

    /// <summary>The answer of an injected abort; marked so that no retry and no outlier detection counts it.</summary>
    public static HttpResponseMessage Abort(HttpRequestMessage request, int status, string route, string destination)
    {
        var response = new HttpResponseMessage((HttpStatusCode)status)
        {
            RequestMessage = request,
            ReasonPhrase = "Fault injected by MeshKit",
            Content = new StringContent($"Fault injected by MeshKit policy: route '{route}' of '{destination}' aborts this share of requests with {status}."),
        };
        response.Headers.TryAddWithoutValidation(InjectedFaultHeader, "abort");
        return response;
    }

    /// <summary>The header that marks an injected fault's answer.</summary>
    public const string InjectedFaultHeader = "x-mesh-fault";

    /// <summary>Whether an answer is an injected fault's.</summary>
    public static bool IsInjectedFault(HttpResponseMessage response) => response.Headers.Contains(InjectedFaultHeader);

    /// <summary>Reads request headers without allocating an enumerator per lookup.</summary>
    private readonly struct RequestHeaders(HttpRequestHeaders headers) : IHeaderSource
    {
        public string? Get(string name) =>
            headers.NonValidated.TryGetValues(name, out var values) && values.Count > 0 ? GetFirst(values) : null;

        private static string? GetFirst(HeaderStringValues values)
        {
            foreach (var value in values)
            {
                return value;
            }

            return null;
        }
    }
}
