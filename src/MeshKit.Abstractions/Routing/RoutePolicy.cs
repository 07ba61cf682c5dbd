using System.Collections.Immutable;
using System.Text.RegularExpressions;

namespace MeshKit.Routing;

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

    /// <summary>Gets the automated canary of this route, if any: its callers report their figures for it (docs/canary.md).</summary>
    public CanaryPolicy? Canary { get; init; }
}
