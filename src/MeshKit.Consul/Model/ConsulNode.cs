using System.Text.Json.Serialization;

namespace MeshKit.Consul;

/// <summary>A Consul node: the agent a service instance is registered on.</summary>
public sealed class ConsulNode
{
    /// <summary>Gets the node's ID (a UUID).</summary>
    [JsonPropertyName("ID")]
    public string Id { get; init => field = value ?? string.Empty; } = string.Empty;

    /// <summary>Gets the node's name.</summary>
    [JsonPropertyName("Node")]
    public string Name { get; init => field = value ?? string.Empty; } = string.Empty;

    /// <summary>Gets the node's address; an instance without its own address is reached here.</summary>
    public string Address { get; init => field = value ?? string.Empty; } = string.Empty;

    /// <summary>Gets the node's datacenter.</summary>
    public string Datacenter { get; init => field = value ?? string.Empty; } = string.Empty;

    /// <summary>Gets the node's metadata.</summary>
    public IReadOnlyDictionary<string, string> Meta { get; init => field = value ?? ConsulService.NoMeta; } = ConsulService.NoMeta;
}
