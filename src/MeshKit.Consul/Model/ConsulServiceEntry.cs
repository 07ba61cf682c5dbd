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
