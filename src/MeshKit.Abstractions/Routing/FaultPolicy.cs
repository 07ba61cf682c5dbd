using System.Collections.Immutable;
using System.Text.RegularExpressions;

namespace MeshKit.Routing;

/// <summary>Faults injected into matched requests (off unless configured).</summary>
/// <param name="DelayPercent">The share of requests delayed, 0–100.</param>
/// <param name="Delay">How long they are delayed.</param>
/// <param name="AbortPercent">The share of requests aborted, 0–100.</param>
/// <param name="AbortStatus">The status an aborted request answers.</param>
public sealed record FaultPolicy(double DelayPercent, TimeSpan Delay, double AbortPercent, int AbortStatus);
