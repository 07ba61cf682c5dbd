namespace MeshKit.ControlPlane;

/// <summary>The Consul KV store that control-service replicas share.</summary>
public sealed class SharedStateConsulOptions
{
    /// <summary>Gets or sets the Consul agent's HTTP address, for example <c>http://127.0.0.1:8500</c>. Not set: no shared store.</summary>
    public Uri? Address { get; set; }

    /// <summary>Gets or sets the ACL token (<c>X-Consul-Token</c>). Never logged.</summary>
    public string? Token { get; set; }

    /// <summary>Gets or sets the datacenter, if not the agent's own.</summary>
    public string? Datacenter { get; set; }

    /// <summary>Gets or sets the KV prefix of everything the control service keeps in Consul. Default <c>meshkit/</c>.</summary>
    public string KeyPrefix { get; set; } = "meshkit/";

    /// <summary>Gets or sets the blocking-query wait. Default 5 minutes.</summary>
    public TimeSpan Wait { get; set; } = TimeSpan.FromMinutes(5);
}
