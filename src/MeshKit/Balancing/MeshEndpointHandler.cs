using MeshKit.Discovery;
using MeshKit.Hosting;
using MeshKit.Transport;

namespace MeshKit.Balancing;

/// <summary>
/// Endpoint choice, once per attempt: the healthy, not-ejected endpoints of the chosen subset, by the balancer, avoiding the
/// endpoint the previous attempt failed on. An unknown subset, or one without endpoints, is an error that names the
/// destination, the route and the subset. Time is the endpoint state's clock; the balancer's draws come from the mesh's <see cref="MeshRandom"/>.
/// </summary>
internal sealed class MeshEndpointHandler(MeshEndpointRegistry registry, EndpointStateRegistry states, MeshRandom random) : DelegatingHandler
{
    private static readonly Policy.DestinationPolicy DefaultPolicy = new() { Destination = "*" };

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var call = MeshCall.Of(request);
        if (call is null)
        {
            return base.SendAsync(request, cancellationToken);
        }

        // Almost always the endpoints are known already: choose without an async state machine.
        var pending = registry.GetAsync(call.Destination.Host, cancellationToken);
        if (pending.IsCompletedSuccessfully)
        {
            Choose(call, pending.Result);
            return base.SendAsync(request, cancellationToken);
        }

        return SendAfterDiscoveryAsync(request, call, pending, cancellationToken);
    }

    private async Task<HttpResponseMessage> SendAfterDiscoveryAsync(HttpRequestMessage request, MeshCall call, ValueTask<EndpointSet> pending, CancellationToken cancellationToken)
    {
        Choose(call, await pending.ConfigureAwait(false));
        return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
    }

    private void Choose(MeshCall call, EndpointSet set)
    {
        if (set.Endpoints.IsDefaultOrEmpty)
        {
            throw new MeshCallException(
                "no_endpoints",
                $"No endpoints are known for mesh destination '{call.Destination.Host}' (checked Mesh:Discovery:Static:{call.Destination.Host} and Consul, if configured)."
                + (set.Error is null ? string.Empty : $" Last discovery error: {set.Error.Message}"),
                set.Error);
        }

        MeshEndpoint[] candidates;
        var subsetKey = call.Route?.SubsetKey ?? call.Policy?.SubsetKey ?? "version";
        if (call.Subset is { } subset)
        {
            candidates = set.Subset(subsetKey, subset);
            if (candidates.Length == 0)
            {
                throw new MeshCallException(
                    "no_endpoints_in_subset",
                    $"Destination '{call.Destination.Host}', route '{call.Route?.Name ?? "default"}': subset {subsetKey}={subset} (chosen by {call.SubsetReason}) has no endpoints; {set.DescribeSubsets(subsetKey)}.");
            }
        }
        else
        {
            candidates = System.Runtime.InteropServices.ImmutableCollectionsMarshal.AsArray(set.Endpoints)!;
        }

        var policy = call.Policy ?? DefaultPolicy;
        call.Endpoint = EndpointSelector.Choose(candidates, call.Destination.Host, policy, states, call.LastFailedEndpoint, states.Now, random);
        call.Candidates = candidates;
    }
}
