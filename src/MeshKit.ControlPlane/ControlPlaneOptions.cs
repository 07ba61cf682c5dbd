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

    /// <summary>Gets or sets the longest wait a workload's control-channel watch may ask for. Default 5 minutes.</summary>
    public TimeSpan MaxWatchWait { get; set; } = TimeSpan.FromMinutes(5);
}

/// <summary>A join token: a secret that lets a workload obtain its first certificate for the services it grants.</summary>
public sealed class JoinTokenOptions
{
    /// <summary>Gets or sets the secret. At least 16 characters; compared in constant time and never logged.</summary>
    public string? Token { get; set; }

    /// <summary>
    /// Gets the services this token grants, as <c>&lt;namespace&gt;/&lt;service&gt;</c>; a bare <c>&lt;service&gt;</c>
    /// means namespace <c>default</c>.
    /// </summary>
    public List<string> Services { get; } = [];
}

/// <summary>Where the control service's certificate authority comes from.</summary>
public sealed class CertificateAuthorityOptions
{
    /// <summary>
    /// Gets or sets the path of a user-supplied CA certificate (PEM). When it is self-signed it is used as the root;
    /// otherwise it is an intermediate and <see cref="TrustBundlePath"/> names the roots. The file may hold further
    /// intermediates after the first certificate.
    /// </summary>
    public string? CertificatePath { get; set; }

    /// <summary>Gets or sets the path of the user-supplied CA's private key (PEM, PKCS#8 or SEC1/PKCS#1).</summary>
    public string? KeyPath { get; set; }

    /// <summary>Gets or sets the path of the roots (PEM) to publish when <see cref="CertificatePath"/> is an intermediate.</summary>
    public string? TrustBundlePath { get; set; }
}

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
