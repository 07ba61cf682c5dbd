using System.Text.Json.Serialization;

namespace MeshKit.Consul;

/// <summary>A registered service instance.</summary>
public sealed class ConsulService
{
    internal static readonly IReadOnlyDictionary<string, string> NoMeta = new Dictionary<string, string>(0);

    /// <summary>Gets the instance ID, unique on its node.</summary>
    [JsonPropertyName("ID")]
    public string Id { get; init => field = value ?? string.Empty; } = string.Empty;

    /// <summary>Gets the service name.</summary>
    [JsonPropertyName("Service")]
    public string Name { get; init => field = value ?? string.Empty; } = string.Empty;

    /// <summary>Gets the instance's tags.</summary>
    public IReadOnlyList<string> Tags { get; init => field = value ?? []; } = [];

    /// <summary>
    /// Gets the address the instance registered with. Empty means "the node's address"; use
    /// <see cref="ConsulServiceEntry.EffectiveAddress"/> to call it.
    /// </summary>
    public string Address { get; init => field = value ?? string.Empty; } = string.Empty;

    /// <summary>Gets the port the instance listens on.</summary>
    public int Port { get; init; }

    /// <summary>Gets the instance's metadata (MeshKit writes <c>version</c>, <c>spiffe-id</c>, <c>meshkit-version</c>, <c>zone</c>).</summary>
    public IReadOnlyDictionary<string, string> Meta { get; init => field = value ?? NoMeta; } = NoMeta;

    /// <summary>Gets the instance's DNS SRV weights, when Consul reports them.</summary>
    public ConsulServiceWeights? Weights { get; init; }
}
