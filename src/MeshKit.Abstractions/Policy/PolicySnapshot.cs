using System.Collections.Frozen;
using System.Collections.Immutable;
using MeshKit.Routing;

namespace MeshKit.Policy;

/// <summary>A validated, precomputed traffic policy; swapped whole on reload.</summary>
public sealed class PolicySnapshot
{
    internal PolicySnapshot(
        DestinationPolicy defaults,
        FrozenDictionary<string, DestinationPolicy> destinations,
        string? subsetHeader,
        Authorization.MeshAuthorizationPolicy authorization,
        string version)
    {
        Authorization = authorization;
        Defaults = defaults;
        Destinations = destinations;
        SubsetHeader = subsetHeader;
        Version = version;
    }

    /// <summary>Gets the policy of destinations that have none of their own.</summary>
    public DestinationPolicy Defaults { get; }

    /// <summary>Gets the destinations with a policy of their own.</summary>
    public FrozenDictionary<string, DestinationPolicy> Destinations { get; }

    /// <summary>Gets the header that lets a tester force a subset (<c>x-mesh-subset</c> by default), or <see langword="null"/> when off.</summary>
    public string? SubsetHeader { get; }

    /// <summary>Gets the serving side's authorization rules (<c>Mesh:Authorization</c>).</summary>
    public Authorization.MeshAuthorizationPolicy Authorization { get; }

    /// <summary>Gets a short hash of the policy's content, the same wherever the same policy is loaded.</summary>
    public string Version { get; }

    /// <summary>Gets the policy of a destination.</summary>
    /// <param name="destination">The destination host (<c>orders</c>).</param>
    /// <returns>Its policy, or the defaults.</returns>
    public DestinationPolicy For(string destination) =>
        Destinations.TryGetValue(destination, out var policy) ? policy : Defaults;
}
