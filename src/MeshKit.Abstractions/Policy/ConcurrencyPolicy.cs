using System.Collections.Frozen;
using System.Collections.Immutable;
using MeshKit.Routing;

namespace MeshKit.Policy;

/// <summary>Envoy-style circuit breaking: how many requests to a destination may be under way or queued.</summary>
public sealed record ConcurrencyPolicy
{
    /// <summary>Gets the most requests under way at once. Default 1024 (Envoy's default).</summary>
    public int MaxRequests { get; init; } = 1024;

    /// <summary>Gets the most requests waiting for a slot; beyond that, requests fail fast. Default 0.</summary>
    public int MaxQueue { get; init; }
}
