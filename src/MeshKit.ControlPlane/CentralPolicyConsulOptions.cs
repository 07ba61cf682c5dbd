namespace MeshKit.ControlPlane;

/// <summary>
/// Consul KV settings of the central policy store. The older way to share policy; <see cref="ControlPlaneOptions.Consul"/>
/// shares revocations too. When only this section is set, it is the shared store's connection, with the policy under its
/// <see cref="KeyPrefix"/> and revocations under <c>meshkit/revocations/</c>.
/// </summary>
public sealed class CentralPolicyConsulOptions
{
    /// <summary>Gets or sets the Consul agent's HTTP address, for example <c>http://127.0.0.1:8500</c>.</summary>
    public Uri? Address { get; set; }

    /// <summary>Gets or sets the ACL token (<c>X-Consul-Token</c>). Never logged.</summary>
    public string? Token { get; set; }

    /// <summary>Gets or sets the datacenter, if not the agent's own.</summary>
    public string? Datacenter { get; set; }

    /// <summary>Gets or sets the KV prefix; each service's document is at <c>&lt;KeyPrefix&gt;&lt;service&gt;</c>. Default <c>meshkit/policy/</c>.</summary>
    public string KeyPrefix { get; set; } = "meshkit/policy/";

    /// <summary>Gets or sets the blocking-query wait. Default 5 minutes.</summary>
    public TimeSpan Wait { get; set; } = TimeSpan.FromMinutes(5);
}
