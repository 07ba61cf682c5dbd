using System.Text.Json.Serialization;

namespace MeshKit.Consul;

/// <summary>One instance of a service as <c>/v1/health/service/&lt;name&gt;</c> returns it: its node, the service and its checks.</summary>
public sealed class ConsulServiceEntry
{
    /// <summary>Gets the node (agent) the instance is registered on.</summary>
    public ConsulNode Node { get; init => field = value ?? new ConsulNode(); } = new();

    /// <summary>Gets the service instance as it was registered.</summary>
    public ConsulService Service { get; init => field = value ?? new ConsulService(); } = new();

    /// <summary>Gets the node's and the instance's health checks.</summary>
    public IReadOnlyList<ConsulHealthCheck> Checks { get; init => field = value ?? []; } = [];

    /// <summary>
    /// Gets the address to call the instance on: <see cref="ConsulService.Address"/>, or the node's
    /// <see cref="ConsulNode.Address"/> when the instance was registered without one (Consul's documented meaning of an
    /// empty service address).
    /// </summary>
    [JsonIgnore]
    public string EffectiveAddress => string.IsNullOrEmpty(Service.Address) ? Node.Address : Service.Address;
}

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

/// <summary>The weights Consul gives an instance in DNS SRV answers, by check state.</summary>
public sealed class ConsulServiceWeights
{
    /// <summary>Gets the weight while every check passes. Consul's default is 1.</summary>
    public int Passing { get; init; } = 1;

    /// <summary>Gets the weight while a check is warning. Consul's default is 1.</summary>
    public int Warning { get; init; } = 1;
}

/// <summary>A health check of a node or of a service instance.</summary>
public sealed class ConsulHealthCheck
{
    /// <summary>Gets the check ID (for example <c>serfHealth</c> or <c>service:orders-1</c>).</summary>
    [JsonPropertyName("CheckID")]
    public string Id { get; init => field = value ?? string.Empty; } = string.Empty;

    /// <summary>Gets the check's name.</summary>
    public string Name { get; init => field = value ?? string.Empty; } = string.Empty;

    /// <summary>Gets the status: <c>passing</c>, <c>warning</c> or <c>critical</c>.</summary>
    public string Status { get; init => field = value ?? string.Empty; } = string.Empty;

    /// <summary>Gets the last output of the check.</summary>
    public string Output { get; init => field = value ?? string.Empty; } = string.Empty;

    /// <summary>Gets the ID of the instance the check belongs to; empty for a node check.</summary>
    [JsonPropertyName("ServiceID")]
    public string ServiceId { get; init => field = value ?? string.Empty; } = string.Empty;

    /// <summary>Gets the name of the service the check belongs to; empty for a node check.</summary>
    public string ServiceName { get; init => field = value ?? string.Empty; } = string.Empty;
}
