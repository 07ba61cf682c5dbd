using MeshKit.Discovery;

namespace MeshKit.Balancing;

/// <summary>
/// Round robin that honours weights: with equal weights the candidates take turns in order; with unequal ones each cycle
/// of <c>Σ weight / g</c> turns (<c>g</c> the weights' greatest common divisor) gives every candidate <c>weight / g</c>
/// turns, interleaved (3:1 gives A B A A; 2:1:1 gives A B C A).
/// </summary>
/// <remarks>
/// The position is this instance's own counter (one instance per destination and policy version), so destinations do not
/// shift each other's turns. It starts at a random turn so that replicas started together do not all send their first
/// request to the same endpoint. The weighted order is computed from the counter alone (interleaved weighted round robin:
/// round <c>r</c> visits, in order, every candidate whose reduced weight exceeds <c>r</c>), not kept per endpoint as
/// nginx's smooth weighted round robin does, so a turn is one interlocked increment and no lock, and a change in the
/// candidates (an ejection, a retry avoiding an endpoint) needs no bookkeeping.
/// </remarks>
internal sealed class RoundRobin : ILoadBalancingPolicy
{
    private int _turn;

    /// <summary>Initializes a new instance of the <see cref="RoundRobin"/> class.</summary>
    /// <param name="random">Where the first turn is drawn from.</param>
    public RoundRobin(MeshRandom random) => _turn = random.Next(int.MaxValue);

    /// <inheritdoc/>
    public MeshEndpoint Choose(ReadOnlySpan<MeshEndpoint> candidates, long now)
    {
        var turn = (uint)Interlocked.Increment(ref _turn);

        var firstWeight = EndpointSelector.WeightOf(candidates[0]);
        var equal = true;
        var divisor = 0;
        var most = 0;
        foreach (var candidate in candidates)
        {
            var weight = EndpointSelector.WeightOf(candidate);
            equal &= weight == firstWeight;
            divisor = Gcd(divisor, weight);
            most = Math.Max(most, weight);
        }

        if (equal)
        {
            return candidates[(int)(turn % (uint)candidates.Length)];
        }

        var rounds = most / divisor;
        var cycle = SlotsBefore(candidates, divisor, rounds);
        var slot = (long)(turn % (ulong)cycle);

        // The round of the slot: the last round r with fewer slots before it than the slot's place (binary search).
        var low = 0;
        var high = rounds - 1;
        while (low < high)
        {
            var middle = low + ((high - low + 1) / 2);
            if (SlotsBefore(candidates, divisor, middle) <= slot)
            {
                low = middle;
            }
            else
            {
                high = middle - 1;
            }
        }

        var index = slot - SlotsBefore(candidates, divisor, low);
        foreach (var candidate in candidates)
        {
            if (EndpointSelector.WeightOf(candidate) / divisor > low && index-- == 0)
            {
                return candidate;
            }
        }

        return candidates[0];
    }

    // The turns of rounds 0 to round - 1: each candidate has one turn in every round below its reduced weight.
    private static long SlotsBefore(ReadOnlySpan<MeshEndpoint> candidates, int divisor, int round)
    {
        var slots = 0L;
        foreach (var candidate in candidates)
        {
            slots += Math.Min(EndpointSelector.WeightOf(candidate) / divisor, round);
        }

        return slots;
    }

    private static int Gcd(int a, int b)
    {
        while (b != 0)
        {
            (a, b) = (b, a % b);
        }

        return a;
    }
}
