using System.Collections.Immutable;
using System.Text.RegularExpressions;

namespace MeshKit.Routing;

/// <summary>A copy of matched requests sent to another subset, fire-and-forget.</summary>
/// <param name="Subset">The subset that receives the copies.</param>
/// <param name="Percent">The share of matched requests copied, 0–100.</param>
public sealed record MirrorPolicy(string Subset, double Percent);
