namespace MeshKit.ControlPlane;

/// <summary>
/// How a control-service replica registers itself in Consul, bound from <c>ControlPlane:Registration</c>. It registers
/// when <c>ControlPlane:Consul:Address</c> is set, so that workloads with <c>Mesh:ControlPlane:ConsulService</c> find it.
/// </summary>
public sealed class ReplicaRegistrationOptions
{
    /// <summary>The Consul service name replicas register as by default.</summary>
    public const string DefaultServiceName = "mesh-control";

    /// <summary>
    /// Gets or sets the Consul service name this replica registers as; workloads name the same one in
    /// <c>Mesh:ControlPlane:ConsulService</c>. Default <c>mesh-control</c>. An empty value registers nothing.
    /// </summary>
    public string? ServiceName { get; set; } = DefaultServiceName;

    /// <summary>
    /// Gets or sets the TTL of the registration's check, reported every third of it while the replica runs. Default 10
    /// seconds; from 1 second to 10 minutes.
    /// </summary>
    public TimeSpan Ttl { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Gets or sets how long Consul keeps a replica whose check is critical (it crashed, or lost Consul) before it removes
    /// the registration. Default 1 minute, Consul's minimum.
    /// </summary>
    public TimeSpan DeregisterCriticalServiceAfter { get; set; } = TimeSpan.FromMinutes(1);
}
