using MeshKit.Discovery;

namespace MeshKit.Balancing;

/// <summary>
/// The default algorithm: power of two choices over peak-EWMA latency times requests in flight
/// (<see cref="EndpointState.ScoreAt"/>), divided by the endpoint's weight. Two distinct candidates are drawn at random
/// (exactly two draws from the mesh's random source) and the one with the lower weighted score wins; a tie goes to the
/// first drawn.
/// </summary>
/// <remarks>
/// The weight divides the load rather than skewing the draws, as Linkerd (tower's <c>Weighted</c> load) and Envoy
/// (least-request's <c>weight / (active requests + 1)</c>) do: the score already counts requests in flight, so under load
/// the in-flight counts settle where <c>score / weight</c> is level, which sends each endpoint traffic in proportion to
/// its weight (3:1 weights, equal latency: three quarters to the first) while a slow or busy endpoint is still avoided
/// whatever its weight. Skewed draws would instead let a heavy endpoint be drawn twice and chosen however slow it is, and
/// under load leave the lighter one more than its share. The cost: with one request at a time (nothing in flight) the
/// heavier endpoint wins every tie, so the shares follow the weights only as requests overlap. With equal weights this
/// is plain power of two choices.
/// </remarks>
/// <param name="destination">The destination whose endpoint states are read.</param>
/// <param name="states">What the client has learned about the endpoints.</param>
/// <param name="random">The mesh's random source.</param>
internal sealed class PeakEwmaPowerOfTwoChoices(string destination, EndpointStateRegistry states, MeshRandom random) : ILoadBalancingPolicy
{
    /// <inheritdoc/>
    public MeshEndpoint Choose(ReadOnlySpan<MeshEndpoint> candidates, long now)
    {
        if (candidates.Length == 1)
        {
            return candidates[0];
        }

        var first = random.Next(candidates.Length);
        var second = random.Next(candidates.Length - 1);
        if (second >= first)
        {
            second++;
        }

        var a = candidates[first];
        var b = candidates[second];
        var scoreA = states.Get(destination, a.Key).ScoreAt(now);
        var scoreB = states.Get(destination, b.Key).ScoreAt(now);
        var weightA = EndpointSelector.WeightOf(a);
        var weightB = EndpointSelector.WeightOf(b);

        // scoreA / weightA <= scoreB / weightB, without the divisions (and exactly the unweighted comparison when equal).
        return weightA == weightB
            ? (scoreA <= scoreB ? a : b)
            : (scoreA * weightB <= scoreB * weightA ? a : b);
    }
}
