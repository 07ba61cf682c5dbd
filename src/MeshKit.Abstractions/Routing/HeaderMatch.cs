using System.Collections.Immutable;
using System.Text.RegularExpressions;

namespace MeshKit.Routing;

/// <summary>A condition on a request header.</summary>
/// <param name="Name">The header name.</param>
/// <param name="Kind">How the value is matched (<see cref="PathMatchKind.Any"/> means "present").</param>
/// <param name="Value">The value to match.</param>
/// <param name="Pattern">The compiled pattern for <see cref="PathMatchKind.Regex"/>.</param>
public sealed record HeaderMatch(string Name, PathMatchKind Kind, string? Value, Regex? Pattern);
