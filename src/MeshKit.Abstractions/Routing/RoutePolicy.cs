using System.Collections.Immutable;
using System.Text.RegularExpressions;

namespace MeshKit.Routing;

/// <summary>How a path is matched.</summary>
public enum PathMatchKind
{
    /// <summary>Any path.</summary>
    Any,

    /// <summary>The path starts with the value, at a segment boundary (<c>/api</c> matches <c>/api</c> and <c>/api/x</c>, not <c>/apix</c>).</summary>
    Prefix,

    /// <summary>The path equals the value.</summary>
    Exact,

    /// <summary>The whole path matches a regular expression (non-backtracking).</summary>
    Regex,
}

/// <summary>A condition on a request header.</summary>
/// <param name="Name">The header name.</param>
/// <param name="Kind">How the value is matched (<see cref="PathMatchKind.Any"/> means "present").</param>
/// <param name="Value">The value to match.</param>
/// <param name="Pattern">The compiled pattern for <see cref="PathMatchKind.Regex"/>.</param>
public sealed record HeaderMatch(string Name, PathMatchKind Kind, string? Value, Regex? Pattern);

/// <summary>What a route matches: path, methods and headers; all given conditions must hold.</summary>
public sealed record RouteMatch
{
    /// <summary>Gets how the path is matched.</summary>
    public PathMatchKind PathKind { get; init; } = PathMatchKind.Any;

    /// <summary>Gets the path value (prefix or exact).</summary>
    public string? Path { get; init; }

    /// <summary>Gets the path pattern (regex).</summary>
    public Regex? PathPattern { get; init; }

    /// <summary>Gets the methods matched (upper case); empty for any.</summary>
    public ImmutableArray<string> Methods { get; init; } = [];

    /// <summary>Gets the header conditions.</summary>
    public ImmutableArray<HeaderMatch> Headers { get; init; } = [];
}

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

/// <summary>A copy of matched requests sent to another subset, fire-and-forget.</summary>
/// <param name="Subset">The subset that receives the copies.</param>
/// <param name="Percent">The share of matched requests copied, 0–100.</param>
public sealed record MirrorPolicy(string Subset, double Percent);

/// <summary>Faults injected into matched requests (off unless configured).</summary>
/// <param name="DelayPercent">The share of requests delayed, 0–100.</param>
/// <param name="Delay">How long they are delayed.</param>
/// <param name="AbortPercent">The share of requests aborted, 0–100.</param>
/// <param name="AbortStatus">The status an aborted request answers.</param>
public sealed record FaultPolicy(double DelayPercent, TimeSpan Delay, double AbortPercent, int AbortStatus);

/// <summary>One route of a destination: what it matches and where matched traffic goes.</summary>
public sealed record RoutePolicy
{
    /// <summary>Gets the route's name (<c>route-0</c> when unnamed).</summary>
    public required string Name { get; init; }

    /// <summary>Gets the route's index in the destination's list.</summary>
    public required int Index { get; init; }

    /// <summary>Gets what the route matches.</summary>
    public RouteMatch Match { get; init; } = new();

    /// <summary>Gets the weighted split, or <see langword="null"/> for every endpoint regardless of subset.</summary>
    public SubsetSplit? Split { get; init; }

    /// <summary>Gets the metadata key that names subsets for this route.</summary>
    public required string SubsetKey { get; init; }

    /// <summary>Gets the mirror, if any.</summary>
    public MirrorPolicy? Mirror { get; init; }

    /// <summary>Gets the injected faults, if any.</summary>
    public FaultPolicy? Fault { get; init; }
}
