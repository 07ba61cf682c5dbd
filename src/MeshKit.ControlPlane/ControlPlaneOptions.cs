namespace MeshKit.ControlPlane;

/// <summary>Settings of the control service, bound from the <c>ControlPlane</c> configuration section.</summary>
public sealed class ControlPlaneOptions
{
    /// <summary>The configuration section these options bind to.</summary>
    public const string SectionName = "ControlPlane";

    /// <summary>Gets or sets the trust domain of every SPIFFE ID this control service issues. Default <c>mesh.local</c>.</summary>
    public string TrustDomain { get; set; } = "mesh.local";

    /// <summary>
    /// Gets or sets the folder that holds the CA key and certificate, the generated admin token and revocations.
    /// Default: <c>MeshKit/control-plane</c> under the user's local application data folder.
    /// </summary>
    public string? DataDirectory { get; set; }

    /// <summary>Gets or sets the lifetime of issued workload certificates. Default 24 hours; any value from 1 second up.</summary>
    public TimeSpan CertificateLifetime { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Gets the join tokens, by name. Each grants first issuance for a list of services.</summary>
    public Dictionary<string, JoinTokenOptions> JoinTokens { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// Gets or sets whether join tokens may grant wildcards (<c>*</c> for every service of every namespace,
    /// <c>&lt;namespace&gt;/*</c> for every service of one namespace). Off by default: a wildcard token lets its holder
    /// become any service it covers. The reserved namespace <c>mesh-system</c> is never granted, wildcard or not.
    /// </summary>
    public bool AllowWildcardGrants { get; set; }

    /// <summary>
    /// Gets or sets the bearer token of the admin API. When empty, a random token is generated on first start and
    /// written to <c>admin-token</c> in the data directory (readable by its owner only).
    /// </summary>
    public string? AdminToken { get; set; }

    /// <summary>Gets or sets where the CA comes from. By default a root is generated on first start and persisted.</summary>
    public CertificateAuthorityOptions Ca { get; set; } = new();

    /// <summary>
    /// Gets the extra DNS names and IP addresses of the control service's own HTTPS certificate, besides
    /// <c>localhost</c>, the machine name, <c>127.0.0.1</c> and <c>::1</c>.
    /// </summary>
    public List<string> HostNames { get; } = [];

    /// <summary>Gets or sets where central policy is kept: a folder of files, or Consul KV for several replicas.</summary>
    public CentralPolicyOptions Policy { get; set; } = new();

    /// <summary>
    /// Gets or sets Consul KV as the store shared by every control-service replica: central policy (under
    /// <c>&lt;KeyPrefix&gt;policy/</c>) and revocations (under <c>&lt;KeyPrefix&gt;revocations/</c>). Used when
    /// <c>ControlPlane:Consul:Address</c> is set; without it each replica keeps its state in its data directory.
    /// </summary>
    public SharedStateConsulOptions Consul { get; set; } = new();

    /// <summary>
    /// Gets or sets how this replica registers in Consul (when <see cref="Consul"/> is set): the service name workloads
    /// look for (<c>mesh-control</c>), its TTL check.
    /// </summary>
    public ReplicaRegistrationOptions Registration { get; set; } = new();

    /// <summary>
    /// Gets or sets the host name or IP address this replica registers in Consul, for workloads to reach it on. Unset: the
    /// address of the first <c>--urls</c> entry, or the machine's host name when that entry binds every address
    /// (<c>0.0.0.0</c>, <c>[::]</c>, <c>*</c>); set it then, to what workloads can reach.
    /// </summary>
    public string? AdvertiseAddress { get; set; }

    /// <summary>Gets or sets the longest wait a workload's control-channel watch may ask for. Default 5 minutes.</summary>
    public TimeSpan MaxWatchWait { get; set; } = TimeSpan.FromMinutes(5);
}
