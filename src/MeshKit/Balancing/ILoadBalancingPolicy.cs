using MeshKit.Discovery;
using MeshKit.Policy;

namespace MeshKit.Balancing;

/// <summary>
/// One load-balancing algorithm (as YARP's <c>ILoadBalancingPolicy</c>): chooses the endpoint of an attempt among the
/// candidates <see cref="EndpointSelector"/> left. The filtering (ejected endpoints, the endpoint that just failed,
/// weight 0, panic mode) is the selector's and the same for every algorithm; an algorithm only weighs what is left.
/// </summary>
/// <remarks>
/// One instance per destination and policy version, held by that destination's <see cref="EndpointStage"/> (built with
/// its call path), so whatever state an algorithm keeps (a round robin's position) is that destination's own. Called
/// once per attempt and concurrently: an implementation allocates nothing and takes no lock. Time and randomness are
/// injected (a timestamp of <see cref="EndpointStateRegistry.Time"/>, the mesh's <see cref="MeshRandom"/>), so a test
/// fixes both.
/// </remarks>
internal interface ILoadBalancingPolicy
{
    /// <summary>Chooses one of <paramref name="candidates"/>.</summary>
    /// <param name="candidates">
    /// At least two endpoints, in discovery order. One of weight 0 is among them only when every candidate has weight 0;
    /// the algorithm then weighs them as equal (see <see cref="EndpointSelector.WeightOf"/>).
    /// </param>
    /// <param name="now">The time, a timestamp of <see cref="EndpointStateRegistry.Time"/>.</param>
    /// <returns>The endpoint of the attempt.</returns>
    MeshEndpoint Choose(ReadOnlySpan<MeshEndpoint> candidates, long now);

    /// <summary>Creates the algorithm a policy names, for one destination (one instance per call path).</summary>
    /// <param name="kind">The policy's <see cref="DestinationPolicy.LoadBalancer"/>.</param>
    /// <param name="destination">The destination.</param>
    /// <param name="states">What the client has learned about the endpoints (latency, requests in flight).</param>
    /// <param name="random">The mesh's random source.</param>
    /// <returns>A new instance.</returns>
    static ILoadBalancingPolicy Create(LoadBalancerKind kind, string destination, EndpointStateRegistry states, MeshRandom random) => kind switch
    {
        LoadBalancerKind.RoundRobin => new RoundRobin(random),
        _ => new PeakEwmaPowerOfTwoChoices(destination, states, random),
    };
}
