namespace MeshKit.Routing;

/// <summary>The subset a call goes to and why.</summary>
/// <param name="Subset">The subset value (for example <c>v2</c>), or <see langword="null"/> when the route names none.</param>
/// <param name="Reason"><c>header</c> (the tester's override header), <c>split</c> (the weighted split), or <c>none</c> (the route names no subset).</param>
/// <param name="SplitIndex">The index of the chosen entry in <see cref="RoutePolicy.Split"/>, when the split chose.</param>
public readonly record struct SubsetChoice(string? Subset, string Reason, int SplitIndex = -1);

/// <summary>
/// Picks a call's subset: the override header (<c>Mesh:Policy:SubsetHeader</c>) when the request carries it, else the
/// route's weighted split. The routing stage and <c>meshctl why</c> both decide with this, so they cannot disagree.
/// </summary>
public static class SubsetSelector
{
    /// <summary>Picks the subset.</summary>
    /// <typeparam name="THeaders">The request's headers (a struct, so the routing stage does not box).</typeparam>
    /// <param name="overrideHeader">The override header's name, or <see langword="null"/> when none is configured.</param>
    /// <param name="route">The matched route.</param>
    /// <param name="headers">The request's headers.</param>
    /// <param name="draw">A random draw in [0, <see cref="SubsetSplit.Total"/>) of the route's split; ignored without one.</param>
    /// <returns>The choice.</returns>
    public static SubsetChoice Select<THeaders>(string? overrideHeader, RoutePolicy route, THeaders headers, int draw)
        where THeaders : IHeaderSource
    {
        ArgumentNullException.ThrowIfNull(route);
        if (overrideHeader is not null && headers.Get(overrideHeader) is { Length: > 0 } forced)
        {
            return new SubsetChoice(forced, "header");
        }

        if (route.Split is { } split)
        {
            var index = split.Pick(draw);
            return new SubsetChoice(split.Subsets[index], "split", index);
        }

        return new SubsetChoice(null, "none");
    }
}
