namespace MeshKit;

/// <summary>How this workload reaches and trusts the control service.</summary>
public sealed class MeshControlPlaneOptions
{
    /// <summary>
    /// Gets or sets the control service's HTTPS address, for example <c>https://127.0.0.1:7443</c>. Required unless
    /// <see cref="Addresses"/> or <see cref="ConsulService"/> says where the control service is.
    /// </summary>
    public Uri? Address { get; set; }

    /// <summary>
    /// Gets the HTTPS addresses of further control-service replicas (<c>Mesh:ControlPlane:Addresses:0</c>, <c>:1</c>, ...;
    /// as environment variables <c>Mesh__ControlPlane__Addresses__0</c>, ...). Together with <see cref="Address"/> they are
    /// the replicas the workload signs and watches with: it stays with one while it answers and moves to the next when it
    /// fails. Every replica is trusted the same way (the mesh's roots, the control service's SPIFFE ID).
    /// </summary>
    public IList<Uri> Addresses { get; } = [];

    /// <summary>
    /// Gets or sets the Consul service the control-service replicas register as (for example <c>mesh-control</c>): the
    /// workload then takes their addresses from Consul's passing instances, keeping the last known ones while Consul is
    /// unreachable. Needs the MeshKit.Discovery.Consul add-on (<c>builder.AddMeshConsulDiscovery()</c> with
    /// <c>Mesh:Discovery:Consul:Address</c>); without it the host does not start. <see cref="Address"/> and
    /// <see cref="Addresses"/>, when also set, are used until Consul first lists a replica.
    /// </summary>
    public string? ConsulService { get; set; }

    /// <summary>
    /// Gets or sets how quickly a replica that does not answer is left for the next one: the longest TCP connect, the
    /// longest wait for a sign answer while another replica is left to try, and the HTTP/2 keep-alive ping interval and
    /// timeout on the watch's connection (at least 1 second), so a replica that died under a waiting long poll is noticed
    /// within a few seconds (about 4 with the default: a ping period, its timeout, and the handler's once-a-second check of
    /// both). Default 1 second.
    /// </summary>
    public TimeSpan FailoverTimeout { get; set; } = TimeSpan.FromSeconds(1);

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
    /// Gets or sets how often the workload reports its calls on canary routes (requests, failures, latencies) to the control
    /// service, for its canary analysis. Only a workload that calls a canary route sends anything. Default 10 seconds; keep
    /// it well under the canaries' <c>Interval</c>.
    /// </summary>
    public TimeSpan TrafficReportInterval { get; set; } = TimeSpan.FromSeconds(10);

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

    /// <summary>
    /// The configured replicas: <see cref="Address"/> first, then <see cref="Addresses"/>, each once, with a path that ends
    /// in <c>/</c> so that API paths resolve under it. Entries the validator refuses are left out.
    /// </summary>
    internal IReadOnlyList<Uri> ConfiguredAddresses()
    {
        var list = new List<Uri>(1 + Addresses.Count);
        Add(Address);
        foreach (var address in Addresses)
        {
            Add(address);
        }

        return list;

        void Add(Uri? address)
        {
            if (IsSet(address) && address!.IsAbsoluteUri && address.Scheme == Uri.UriSchemeHttps)
            {
                var normalized = address.AbsolutePath.EndsWith('/') ? address : new Uri(address.GetLeftPart(UriPartial.Path) + "/");
                if (!list.Contains(normalized))
                {
                    list.Add(normalized);
                }
            }
        }
    }

    /// <summary>An empty value (an empty environment variable) is no value.</summary>
    internal static bool IsSet(Uri? address) => address is not null && address.OriginalString.Length > 0;
}
