using MeshKit.Discovery;
using MeshKit.Policy;

namespace MeshKit.Balancing;

/// <summary>
/// Chooses the endpoint of an attempt among a subset: ejected endpoints are left out (unless every one is: panic mode
/// uses them all), the endpoint that just failed is avoided where another exists, and the rest is the balancer's choice:
/// power of two choices over peak-EWMA latency times in-flight requests (default), or round robin. Time (<c>now</c>, a
/// timestamp of <see cref="EndpointStateRegistry.Time"/>) and the random draws are the caller's, so a test fixes both.
/// </summary>
internal static class EndpointSelector
{
    private static int _roundRobin;

    public static MeshEndpoint Choose(
        ReadOnlySpan<MeshEndpoint> subset,
        string destination,
        DestinationPolicy policy,
        EndpointStateRegistry states,
        string? avoid,
        long now,
        MeshRandom random)
    {
        if (subset.Length == 1)
        {
            return subset[0];
        }

        // Candidates: not ejected, not the one that just failed. Counted first so nothing is allocated.
        var eligible = 0;
        var eligibleIgnoringAvoid = 0;
        foreach (var endpoint in subset)
        {
            var ejected = states.Find(destination, endpoint.Key)?.IsEjected(now) == true;
            if (!ejected)
            {
                eligibleIgnoringAvoid++;
                if (!string.Equals(endpoint.Key, avoid, StringComparison.Ordinal))
                {
                    eligible++;
                }
            }
        }

        // Fall back step by step: allow the failed one again, then (panic) allow ejected ones.
        var mode = eligible > 0 ? 0 : eligibleIgnoringAvoid > 0 ? 1 : 2;
        var count = mode switch { 0 => eligible, 1 => eligibleIgnoringAvoid, _ => subset.Length };

        if (policy.LoadBalancer == LoadBalancerKind.RoundRobin)
        {
            var n = (int)((uint)Interlocked.Increment(ref _roundRobin) % (uint)count);
            return Nth(subset, destination, states, avoid, now, mode, n);
        }

        if (count == 1)
        {
            return Nth(subset, destination, states, avoid, now, mode, 0);
        }

        // Power of two choices: two distinct random candidates, the lower score wins.
        var first = random.Next(count);
        var second = random.Next(count - 1);
        if (second >= first)
        {
            second++;
        }

        var a = Nth(subset, destination, states, avoid, now, mode, first);
        var b = Nth(subset, destination, states, avoid, now, mode, second);
        var scoreA = states.Get(destination, a.Key).ScoreAt(now);
        var scoreB = states.Get(destination, b.Key).ScoreAt(now);
        return scoreA <= scoreB ? a : b;
    }

    private static MeshEndpoint Nth(ReadOnlySpan<MeshEndpoint> subset, string destination, EndpointStateRegistry states, string? avoid, long now, int mode, int n)
    {
        foreach (var endpoint in subset)
        {
            if (mode < 2 && states.Find(destination, endpoint.Key)?.IsEjected(now) == true)
            {
                continue;
            }

            if (mode == 0 && string.Equals(endpoint.Key, avoid, StringComparison.Ordinal))
            {
                continue;
            }

            if (n-- == 0)
            {
                return endpoint;
            }
        }

        return subset[0];
    }
}
