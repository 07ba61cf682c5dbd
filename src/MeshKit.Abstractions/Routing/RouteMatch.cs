using System.Collections.Immutable;
using System.Text.RegularExpressions;

namespace MeshKit.Routing;

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
