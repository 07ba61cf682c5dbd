namespace MeshKit.Routing;

/// <summary>The subset a call goes to and why.</summary>
/// <param name="Subset">The subset value (for example <c>v2</c>), or <see langword="null"/> when the route names none.</param>
/// <param name="Reason"><c>header</c> (the tester's override header), <c>split</c> (the weighted split), or <c>none</c> (the route names no subset).</param>
/// <param name="SplitIndex">The index of the chosen entry in <see cref="RoutePolicy.Split"/>, when the split chose.</param>
public readonly record struct SubsetChoice(string? Subset, string Reason, int SplitIndex = -1);
