namespace MeshKit;

/// <summary>Who this workload is: its SPIFFE ID is <c>spiffe://&lt;TrustDomain&gt;/ns/&lt;Namespace&gt;/svc/&lt;Name&gt;</c>.</summary>
public sealed class MeshServiceOptions
{
    /// <summary>Gets or sets the service name (a DNS label). Required.</summary>
    public string? Name { get; set; }

    /// <summary>Gets or sets the namespace (a DNS label). Default <c>default</c>.</summary>
    public string Namespace { get; set; } = Identity.SpiffeId.DefaultNamespace;

    /// <summary>Gets or sets the version of this instance (for example <c>v2</c>); canary subsets match on it.</summary>
    public string? Version { get; set; }

    /// <summary>Gets or sets the zone of this instance, if any.</summary>
    public string? Zone { get; set; }

    /// <summary>Gets or sets an id unique to this instance; default: the host name and process id.</summary>
    public string? InstanceId { get; set; }
}
