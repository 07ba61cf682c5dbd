namespace MeshKit;

/// <summary>MeshKit's settings, bound from the <c>Mesh</c> configuration section.</summary>
public sealed class MeshOptions
{
    /// <summary>The configuration section these options bind to.</summary>
    public const string SectionName = "Mesh";

    /// <summary>Gets or sets who this workload is.</summary>
    public MeshServiceOptions Service { get; set; } = new();

    /// <summary>Gets or sets the trust domain of the mesh. Default <c>mesh.local</c>; must equal the control service's.</summary>
    public string TrustDomain { get; set; } = "mesh.local";

    /// <summary>Gets or sets how this workload reaches and trusts the control service.</summary>
    public MeshControlPlaneOptions ControlPlane { get; set; } = new();

    /// <summary>Gets or sets when the workload certificate is renewed.</summary>
    public MeshIdentityOptions Identity { get; set; } = new();

    /// <summary>Gets or sets the mesh endpoint: the Kestrel endpoint that requires a mesh client certificate.</summary>
    public MeshEndpointOptions Endpoint { get; set; } = new();

    /// <summary>Gets or sets how mesh clients connect.</summary>
    public MeshTransportOptions Transport { get; set; } = new();

    /// <summary>Gets or sets which hosts mesh clients treat as mesh destinations, and what they do with the others.</summary>
    public MeshClientOptions Client { get; set; } = new();
}

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

/// <summary>How this workload reaches and trusts the control service.</summary>
public sealed class MeshControlPlaneOptions
{
    /// <summary>Gets or sets the control service's HTTPS address, for example <c>https://127.0.0.1:7443</c>. Required.</summary>
    public Uri? Address { get; set; }

    /// <summary>Gets or sets the join token for the first certificate. Never logged.</summary>
    public string? JoinToken { get; set; }

    /// <summary>
    /// Gets or sets the PEM file of the roots that the control service's certificate chains to: how the workload trusts
    /// the control service on first contact. The control service writes it as <c>trust-bundle.pem</c> in its data
    /// directory. Required.
    /// </summary>
    public string? TrustBundlePath { get; set; }

    /// <summary>Gets or sets how long startup waits for a first certificate before it fails. Default 30 seconds.</summary>
    public TimeSpan StartupTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Gets or sets the wait of the control-channel long poll. Default 5 minutes; tests use 1 second.</summary>
    public TimeSpan WatchWait { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Gets or sets whether the workload may start on its local policy alone when, within <see cref="StartupTimeout"/>,
    /// the control service cannot say what its central policy is (its policy store is unreachable). Default
    /// <see langword="false"/>: startup fails instead, because central authorization rules could be missing.
    /// </summary>
    public bool StartWithoutCentralPolicy { get; set; }

    /// <summary>
    /// Gets or sets the folder where the workload keeps the last trust bundle the control service sent it
    /// (<c>trust-bundle.pem</c>, owner-only), so that a restart after a CA rotation still trusts the control service when
    /// <see cref="TrustBundlePath"/> holds only the old root. Unset: <c>&lt;LocalApplicationData&gt;/MeshKit/workloads/&lt;TrustDomain&gt;/&lt;Namespace&gt;/&lt;Name&gt;</c>.
    /// An empty value turns it off.
    /// </summary>
    public string? StateDirectory { get; set; }
}

/// <summary>When the workload certificate is renewed, and how failures are retried.</summary>
public sealed class MeshIdentityOptions
{
    /// <summary>Gets or sets the fraction of the certificate's lifetime after which it is renewed. Default 0.5.</summary>
    public double RenewalFraction { get; set; } = 0.5;

    /// <summary>Gets or sets the jitter around the renewal point, as a fraction of the lifetime. Default 0.1 (±10 %).</summary>
    public double RenewalJitter { get; set; } = 0.1;

    /// <summary>Gets or sets the first delay after a failed renewal; doubled on each failure. Default 1 second.</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Gets or sets the longest delay between renewal attempts. Default 1 minute.</summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromMinutes(1);
}

/// <summary>The mesh endpoint: HTTPS that requires a mesh client certificate, HTTP/2 and HTTP/1.1.</summary>
public sealed class MeshEndpointOptions
{
    /// <summary>
    /// Gets or sets the port of the mesh endpoint; 0 picks a free port. When unset, the workload has no mesh endpoint
    /// (it only calls other services).
    /// </summary>
    public int? Port { get; set; }

    /// <summary>Gets or sets the address the mesh endpoint binds to. Default <c>0.0.0.0</c> (every IPv4 interface).</summary>
    public string Address { get; set; } = "0.0.0.0";

    /// <summary>Gets or sets the most connections the mesh endpoint holds open at once; more are closed at once. Default 10,000.</summary>
    public int MaxConnections { get; set; } = 10_000;

    /// <summary>Gets or sets how long a TLS handshake on the mesh endpoint may take before the connection is closed. Default 10 s.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Gets or sets the address other workloads use to reach this one (registered in discovery). Default: the bind
    /// address, or the machine's host name when binding every interface.
    /// </summary>
    public string? AdvertiseAddress { get; set; }
}

/// <summary>How mesh clients connect.</summary>
public sealed class MeshTransportOptions
{
    /// <summary>
    /// Gets or sets the longest a pooled connection lives. Default 5 minutes. It is further capped at a quarter of the
    /// certificate lifetime, so that no connection outlives the certificates it was opened with.
    /// </summary>
    public TimeSpan MaxConnectionLifetime { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Gets or sets how long a connection may sit idle in the pool. Default 1 minute.</summary>
    public TimeSpan IdleConnectionTimeout { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Gets or sets the connect timeout. Default 5 seconds.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Gets or sets the HTTP version mesh calls ask for. Default <c>2.0</c>: HTTP/2 over mTLS costs about as much CPU per
    /// request as plaintext HTTP/1.1, while mTLS over HTTP/1.1 costs about twice as much. A peer without h2 still gets
    /// HTTP/1.1 through ALPN.
    /// </summary>
    public Version HttpVersion { get; set; } = System.Net.HttpVersion.Version20;
}

/// <summary>
/// Which hosts mesh clients treat as mesh destinations, and what they do with requests to any other host. A mesh name is
/// <c>&lt;service&gt;</c> (a service in this workload's namespace) or <c>&lt;service&gt;.&lt;namespace&gt;</c> for this
/// workload's namespace, a namespace listed in <see cref="Namespaces"/>, or a host with its own entry in
/// <c>Mesh:Discovery:Static</c>. Everything else (<c>example.com</c>, <c>localhost</c>, an IP address, a URI with a port)
/// never enters mesh discovery.
/// </summary>
public sealed class MeshClientOptions
{
    /// <summary>
    /// Gets the namespaces, besides this workload's own, whose services mesh clients call as
    /// <c>https://&lt;service&gt;.&lt;namespace&gt;</c>. Each is a DNS label; <c>mesh-system</c>, <c>localhost</c> and
    /// <c>local</c> are refused. Read at start.
    /// </summary>
    public IList<string> Namespaces { get; } = new List<string>();

    /// <summary>
    /// Gets or sets what a mesh client does with a request that is not a mesh call (another host, scheme or port).
    /// Default <see cref="NonMeshHostMode.PassThrough"/>.
    /// </summary>
    public NonMeshHostMode NonMeshHosts { get; set; } = NonMeshHostMode.PassThrough;
}

/// <summary>What a mesh client does with a request that is not a mesh call (<c>Mesh:Client:NonMeshHosts</c>).</summary>
public enum NonMeshHostMode
{
    /// <summary>
    /// Send it as an ordinary call, untouched by the mesh: the machine's trust store, no client certificate, no mesh
    /// routing, retries or spans (Istio's <c>ALLOW_ANY</c>). The default.
    /// </summary>
    PassThrough,

    /// <summary>
    /// Fail it with a <c>MeshCallException</c> whose reason is <c>not_a_mesh_destination</c> and whose message names the
    /// host: the client talks to the mesh only (Istio's <c>REGISTRY_ONLY</c>).
    /// </summary>
    Refuse,
}
