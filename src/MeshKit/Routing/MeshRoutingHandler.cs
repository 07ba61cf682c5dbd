using System.Net;
using System.Net.Http.Headers;
using MeshKit.Hosting;
using MeshKit.Policy;
using MeshKit.Transport;

namespace MeshKit.Routing;

/// <summary>
/// Route stage: matches the call against its destination's routes (path, method, headers), picks the subset (the tester's
/// override header, else the weighted split), starts a mirror copy when the route asks for one, and injects the route's
/// faults. The decision is recorded on the <see cref="MeshCall"/> for the stages below and for telemetry. The split, mirror
/// and fault draws come from the mesh's <see cref="MeshRandom"/>, a fault's delay runs on the mesh's <see cref="TimeProvider"/>.
/// </summary>
internal sealed class MeshRoutingHandler(PolicyWatcher policies, MirrorSender mirror, MeshRandom random, TimeProvider time) : DelegatingHandler
{
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var call = MeshCall.Of(request);
        if (call is null || call.IsMirror)
        {
            return base.SendAsync(request, cancellationToken);
        }

        var snapshot = policies.Current;
        var policy = snapshot.For(call.Destination.Host);
        var headers = new RequestHeaders(request.Headers);
        var route = RouteMatcher.Match(policy, request.Method.Method, request.RequestUri!.AbsolutePath, headers) ?? RouteMatcher.DefaultRoute(policy);
        call.Policy = policy;
        call.Route = route;

        var subset = SubsetSelector.Select(snapshot.SubsetHeader, route, headers, route.Split is { } split ? random.Next(split.Total) : 0);
        call.Subset = subset.Subset;
        call.SubsetReason = subset.Reason;

        if (route.Mirror is { } mirrorPolicy && (mirrorPolicy.Percent >= 100 || random.NextDouble() * 100 < mirrorPolicy.Percent))
        {
            mirror.TrySend(request, call, mirrorPolicy.Subset, route.SubsetKey);
        }

        // Most routes inject no fault: they pass the call on without an async state machine of their own.
        return route.Fault is { } fault ? SendWithFaultAsync(request, fault, call, cancellationToken) : base.SendAsync(request, cancellationToken);
    }

    private async Task<HttpResponseMessage> SendWithFaultAsync(HttpRequestMessage request, FaultPolicy fault, MeshCall call, CancellationToken cancellationToken)
    {
        if (fault.DelayPercent > 0 && random.NextDouble() * 100 < fault.DelayPercent)
        {
            await Task.Delay(fault.Delay, time, cancellationToken).ConfigureAwait(false);
        }

        if (fault.AbortPercent > 0 && random.NextDouble() * 100 < fault.AbortPercent)
        {
            return Abort(request, fault.AbortStatus, call);
        }

        return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
    }

    private static HttpResponseMessage Abort(HttpRequestMessage request, int status, MeshCall call)
    {
        var response = new HttpResponseMessage((HttpStatusCode)status)
        {
            RequestMessage = request,
            ReasonPhrase = "Fault injected by MeshKit",
            Content = new StringContent($"Fault injected by MeshKit policy: route '{call.Route!.Name}' of '{call.Destination.Host}' aborts this share of requests with {status}."),
        };
        response.Headers.TryAddWithoutValidation("x-mesh-fault", "abort");
        return response;
    }

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
