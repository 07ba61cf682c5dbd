namespace MeshKit.ControlPlane;

/// <summary>Where the control service keeps the central policy it serves to workloads.</summary>
public sealed class CentralPolicyOptions
{
    /// <summary>
    /// Gets or sets the folder of policy documents, one <c>&lt;service&gt;.json</c> per service (default
    /// <c>&lt;DataDirectory&gt;/policy</c>). Ignored when <see cref="Consul"/> is configured.
    /// </summary>
    public string? Directory { get; set; }

    /// <summary>
    /// Gets or sets Consul KV as the store, so several control-service replicas share one policy (writes use CAS).
    /// Used when <c>ControlPlane:Policy:Consul:Address</c> is set.
    /// </summary>
    public CentralPolicyConsulOptions? Consul { get; set; }
}
