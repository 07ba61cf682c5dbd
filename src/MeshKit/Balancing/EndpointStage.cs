using MeshKit.Discovery;
using MeshKit.Policy;
using MeshKit.Telemetry;
using MeshKit.Transport;

namespace MeshKit.Balancing;

/// <summary>The endpoint chosen for one attempt, and the subset it was chosen among (for outlier detection).</summary>
/// <param name="Endpoint">The endpoint.</param>
/// <param name="Candidates">The subset's endpoints.</param>
internal readonly record struct EndpointChoice(MeshEndpoint Endpoint, MeshEndpoint[] Candidates);

/// <summary>
/// Endpoint choice and attempt feedback of one destination under one policy. Choice, once per attempt: the healthy,
/// not-ejected endpoints of the chosen subset, by the balancer, avoiding the endpoint the previous attempt failed on; an
/// unknown subset, or one without endpoints, is an error that names the destination, the route and the subset. Feedback,
/// once per attempt: its latency and outcome go to the balancer and the outlier detector; a failed attempt counts as at
/// least <see cref="DestinationPolicy.FailurePenalty"/> of latency, so an endpoint that fails fast does not look fast.
/// Time is the endpoint state's clock; the balancer's draws come from the mesh's random source. The balancer is this
/// stage's own instance of the policy's <see cref="DestinationPolicy.LoadBalancer"/> (<see cref="ILoadBalancingPolicy"/>).
/// </summary>
internal sealed class EndpointStage(
    string destination,
    DestinationPolicy policy,
    MeshEndpointRegistry registry,
    EndpointStateRegistry states,
    MeshRandom random,
    MeshMetrics metrics)
{
    // The destination's own algorithm, made with its call path: a policy change rebuilds both.
    private readonly ILoadBalancingPolicy _balancer = ILoadBalancingPolicy.Create(policy.LoadBalancer, destination, states, random);

    /// <summary>Gets the clock of every latency and ejection time.</summary>
    public TimeProvider Time => states.Time;

    /// <summary>Chooses the endpoint of an attempt; synchronous whenever discovery already knows the destination.</summary>
    public ValueTask<EndpointChoice> ChooseAsync(string? subset, string subsetKey, string subsetReason, string route, string? avoid, CancellationToken cancellationToken)
    {
        var pending = registry.GetAsync(destination, cancellationToken);
        return pending.IsCompletedSuccessfully
            ? ValueTask.FromResult(Choose(pending.Result, subset, subsetKey, subsetReason, route, avoid))
            : ChooseAfterDiscoveryAsync(pending, subset, subsetKey, subsetReason, route, avoid);
    }

    /// <summary>Counts an attempt under way on an endpoint (the balancer weighs endpoints by requests in flight).</summary>
    public EndpointState Begin(MeshEndpoint endpoint)
    {
        var state = states.Get(destination, endpoint.Key);
        state.Started();
        return state;
    }

    /// <summary>Feeds an attempt's outcome back: latency to the balancer, a failure to the outlier detector.</summary>
    /// <param name="state">What <see cref="Begin"/> returned.</param>
    /// <param name="choice">The choice the attempt was made on.</param>
    /// <param name="started">When the attempt started, a timestamp of <see cref="Time"/>.</param>
    /// <param name="failed">Whether the endpoint failed (a 5xx, a timeout, a transport failure); a cancelled call is no failure.</param>
    /// <param name="connectFailure">Whether the transport failed (refused, reset, a failed handshake).</param>
    /// <param name="ejects">Whether a failure may eject (not for mirror copies).</param>
    public void End(EndpointState state, EndpointChoice choice, long started, bool failed, bool connectFailure, bool ejects)
    {
        var now = Time.GetTimestamp();
        var latency = Time.GetElapsedTime(started, now);
        state.Finished();
        if (!failed)
        {
            state.RecordLatency(latency, now);
            state.RecordSuccess();
            return;
        }

        state.RecordLatency(latency > policy.FailurePenalty ? latency : policy.FailurePenalty, now);
        if (ejects && OutlierDetector.RecordFailure(state, policy.OutlierDetection, choice.Candidates, states, now, connectFailure))
        {
            metrics.RecordEjection(destination, choice.Endpoint.Key);
            states.NotifyEjected();
        }
    }

    /// <summary>
    /// The first half of <see cref="End"/> for a gRPC call whose status comes in trailers: the attempt's latency (to the
    /// response headers) goes to the balancer now; its outcome comes with the status (<see cref="EndWithStatus"/>).
    /// </summary>
    public void EndAtHeaders(EndpointState state, long started)
    {
        var now = Time.GetTimestamp();
        state.Finished();
        state.RecordLatency(Time.GetElapsedTime(started, now), now);
    }

    /// <summary>The second half for a gRPC call: the status read from its trailers, a success or a failure of the endpoint.</summary>
    public void EndWithStatus(EndpointState state, EndpointChoice choice, bool failed)
    {
        if (!failed)
        {
            state.RecordSuccess();
            return;
        }

        var now = Time.GetTimestamp();
        state.RecordLatency(policy.FailurePenalty, now);
        if (OutlierDetector.RecordFailure(state, policy.OutlierDetection, choice.Candidates, states, now))
        {
            metrics.RecordEjection(destination, choice.Endpoint.Key);
            states.NotifyEjected();
        }
    }

    private async ValueTask<EndpointChoice> ChooseAfterDiscoveryAsync(ValueTask<EndpointSet> pending, string? subset, string subsetKey, string subsetReason, string route, string? avoid) =>
        Choose(await pending.ConfigureAwait(false), subset, subsetKey, subsetReason, route, avoid);

    private EndpointChoice Choose(EndpointSet set, string? subset, string subsetKey, string subsetReason, string route, string? avoid)
    {
        if (set.Endpoints.IsDefaultOrEmpty)
        {
            throw new MeshCallException(
                MeshCallReasons.NoEndpoints,
                $"No endpoints are known for mesh destination '{destination}' (checked Mesh:Discovery:Static:{destination} and Consul, if configured)."
                + (set.Error is null ? string.Empty : $" Last discovery error: {set.Error.Message}"),
                set.Error);
        }

        MeshEndpoint[] candidates;
        if (subset is not null)
        {
            candidates = set.Subset(subsetKey, subset);
            if (candidates.Length == 0)
            {
                throw new MeshCallException(
                    MeshCallReasons.NoEndpointsInSubset,
                    $"Destination '{destination}', route '{route}': subset {subsetKey}={subset} (chosen by {subsetReason}) has no endpoints; {set.DescribeSubsets(subsetKey)}.");
            }
        }
        else
        {
            candidates = System.Runtime.InteropServices.ImmutableCollectionsMarshal.AsArray(set.Endpoints)!;
        }

        var endpoint = EndpointSelector.Choose(candidates, destination, states, avoid, states.Now, _balancer);
        return new EndpointChoice(endpoint, candidates);
    }
}
