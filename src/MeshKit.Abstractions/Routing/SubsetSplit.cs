using System.Collections.Immutable;
using System.Text.RegularExpressions;

namespace MeshKit.Routing;

/// <summary>A weighted split across subsets, precomputed for a single random draw.</summary>
public sealed class SubsetSplit
{
    private readonly int[] _cumulative;

    /// <summary>Initializes a split.</summary>
    /// <param name="subsets">The subsets, in order.</param>
    /// <param name="weights">Their weights (non-negative, summing to more than 0).</param>
    public SubsetSplit(ImmutableArray<string> subsets, ImmutableArray<int> weights)
    {
        Subsets = subsets;
        Weights = weights;
        _cumulative = new int[weights.Length];
        var total = 0;
        for (var i = 0; i < weights.Length; i++)
        {
            total += weights[i];
            _cumulative[i] = total;
        }

        Total = total;
    }

    /// <summary>Gets the subsets.</summary>
    public ImmutableArray<string> Subsets { get; }

    /// <summary>Gets their weights.</summary>
    public ImmutableArray<int> Weights { get; }

    /// <summary>Gets the sum of the weights.</summary>
    public int Total { get; }

    /// <summary>Picks a subset for a draw in [0, <see cref="Total"/>).</summary>
    /// <param name="draw">The random draw.</param>
    /// <returns>The index of the subset.</returns>
    public int Pick(int draw)
    {
        var cumulative = _cumulative;
        for (var i = 0; i < cumulative.Length; i++)
        {
            if (draw < cumulative[i])
            {
                return i;
            }
        }

        return cumulative.Length - 1;
    }

    /// <summary>Gets a subset's share of traffic in percent.</summary>
    /// <param name="index">The subset's index.</param>
    /// <returns>Its weight over the total, times 100.</returns>
    public double Percent(int index) => Total == 0 ? 0 : 100.0 * Weights[index] / Total;
}
