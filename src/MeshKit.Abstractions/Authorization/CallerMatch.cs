using System.Collections.Immutable;

namespace MeshKit.Authorization;

/// <summary>Which callers a rule applies to. An empty match (no <c>From</c>) applies to every caller, mesh or public.</summary>
public sealed record CallerMatch
{
    /// <summary>Gets a match for every caller.</summary>
    public static readonly CallerMatch Anyone = new() { Any = true };

    /// <summary>Gets whether every caller matches.</summary>
    public bool Any { get; init; }

    /// <summary>Gets caller service names (any namespace), or <c>namespace/service</c>.</summary>
    public ImmutableArray<string> Services { get; init; } = [];

    /// <summary>Gets caller namespaces.</summary>
    public ImmutableArray<string> Namespaces { get; init; } = [];

    /// <summary>Gets SPIFFE ID patterns: exact IDs, or a prefix ending in <c>*</c>.</summary>
    public ImmutableArray<string> SpiffeIds { get; init; } = [];

    /// <summary>Gets whether callers without a mesh identity (public endpoints) match.</summary>
    public bool Public { get; init; }
}
