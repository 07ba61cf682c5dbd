namespace MeshKit.Routing;

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
