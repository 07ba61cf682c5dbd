using System.Collections.Immutable;

namespace MeshKit.Authorization;

/// <summary>Which requests a rule applies to, matched against the routed endpoint. Empty lists match everything.</summary>
public sealed record RequestMatch
{
    /// <summary>Gets path patterns: a route template or path as written (<c>/api/orders/{id}</c>), a segment prefix (<c>/api/*</c>) or <c>*</c>.</summary>
    public ImmutableArray<string> Paths { get; init; } = [];

    /// <summary>Gets methods (upper case).</summary>
    public ImmutableArray<string> Methods { get; init; } = [];
}
