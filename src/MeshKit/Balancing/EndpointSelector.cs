using System.Buffers;
using System.Runtime.CompilerServices;
using MeshKit.Discovery;

namespace MeshKit.Balancing;

/// <summary>
/// Chooses the endpoint of an attempt among a subset, the same way whatever the algorithm: ejected endpoints are left
/// out (unless every one is: panic mode uses them all), the endpoint that just failed is avoided where another exists,
/// an endpoint of weight 0 is left out unless every remaining candidate has weight 0, and the rest is the algorithm's
/// choice (<see cref="ILoadBalancingPolicy"/>). Time (<c>now</c>, a timestamp of <see cref="EndpointStateRegistry.Time"/>)
/// is the caller's and the algorithm's random draws are injected, so a test fixes both.
/// </summary>
/// <remarks>
/// Weight 0 is the last rule relaxed: a retry that avoids the only weighted endpoint, or a subset whose weighted
/// endpoints are all ejected, goes to a weight-0 endpoint rather than back to the failed or ejected one. When nothing is
/// left out (the usual case) the algorithm sees the subset itself; otherwise the candidates are copied to a buffer on the
/// stack (a pooled array beyond 16), so a choice allocates nothing.
/// </remarks>
internal static class EndpointSelector
{
    private const int StackCandidates = 16;

    /// <summary>Gets an endpoint's weight as the algorithms use it: its <see cref="MeshEndpointMetadata.Weight"/>, 0 counted as 1.</summary>
    /// <remarks>An endpoint of weight 0 reaches an algorithm only when every candidate has weight 0: then they weigh the same.</remarks>
    /// <param name="endpoint">The endpoint.</param>
    /// <returns>The weight, at least 1.</returns>
    public static int WeightOf(MeshEndpoint endpoint) => Math.Max(endpoint.Metadata.Weight, 1);

    /// <summary>Chooses the endpoint of an attempt among <paramref name="subset"/>.</summary>
    /// <param name="subset">The endpoints of the chosen subset (at least one).</param>
    /// <param name="destination">The destination whose endpoint states are read.</param>
    /// <param name="states">What the client has learned about the endpoints (ejection).</param>
    /// <param name="avoid">The key of the endpoint the previous attempt failed on, or <see langword="null"/>.</param>
    /// <param name="now">The time, a timestamp of <see cref="EndpointStateRegistry.Time"/>.</param>
    /// <param name="balancer">The destination's algorithm.</param>
    /// <returns>The endpoint.</returns>
    public static MeshEndpoint Choose(
        ReadOnlySpan<MeshEndpoint> subset,
        string destination,
        EndpointStateRegistry states,
        string? avoid,
        long now,
        ILoadBalancingPolicy balancer)
    {
        if (subset.Length == 1)
        {
            return subset[0];
        }

        // Counted first so that nothing is copied when nothing is left out. Level 0: neither ejected nor the one that just
        // failed; level 1: not ejected; level 2 (panic): every endpoint. Of each, how many have a weight above 0.
        int notEjectedNorAvoided = 0, notEjectedNorAvoidedWeighted = 0, notEjected = 0, notEjectedWeighted = 0, weighted = 0;
        foreach (var endpoint in subset)
        {
            var hasWeight = endpoint.Metadata.Weight > 0;
            weighted += hasWeight ? 1 : 0;
            if (states.Find(destination, endpoint.Key)?.IsEjected(now) == true)
            {
                continue;
            }

            notEjected++;
            notEjectedWeighted += hasWeight ? 1 : 0;
            if (!string.Equals(endpoint.Key, avoid, StringComparison.Ordinal))
            {
                notEjectedNorAvoided++;
                notEjectedNorAvoidedWeighted += hasWeight ? 1 : 0;
            }
        }

        // Fall back step by step: allow the failed one again, then (panic) allow ejected ones.
        var (level, count, countWeighted) = notEjectedNorAvoided > 0 ? (0, notEjectedNorAvoided, notEjectedNorAvoidedWeighted)
            : notEjected > 0 ? (1, notEjected, notEjectedWeighted)
            : (2, subset.Length, weighted);
        var weightedOnly = countWeighted > 0 && countWeighted < count;
        if (weightedOnly)
        {
            count = countWeighted;
        }

        if (count == subset.Length)
        {
            return balancer.Choose(subset, now);
        }

        MeshEndpoint[]? rented = null;
        var onStack = default(CandidateBuffer);
        var buffer = count <= StackCandidates
            ? onStack[..count]
            : (rented = ArrayPool<MeshEndpoint>.Shared.Rent(count)).AsSpan(0, count);
        try
        {
            var filled = 0;
            foreach (var endpoint in subset)
            {
                if (filled < buffer.Length
                    && !(weightedOnly && endpoint.Metadata.Weight <= 0)
                    && !(level < 2 && states.Find(destination, endpoint.Key)?.IsEjected(now) == true)
                    && !(level == 0 && string.Equals(endpoint.Key, avoid, StringComparison.Ordinal)))
                {
                    buffer[filled++] = endpoint;
                }
            }

            // An endpoint ejected between the two passes leaves fewer; none at all: panic, as above.
            return filled switch
            {
                0 => balancer.Choose(subset, now),
                1 => buffer[0],
                _ => balancer.Choose(buffer[..filled], now),
            };
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<MeshEndpoint>.Shared.Return(rented, clearArray: true);
            }
        }
    }

    /// <summary>Room for the candidates of a typical subset, on the stack.</summary>
    [InlineArray(StackCandidates)]
    private struct CandidateBuffer
    {
        private MeshEndpoint _first;
    }
}
