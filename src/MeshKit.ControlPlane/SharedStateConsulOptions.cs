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

    /// <summary>
    /// Gets or sets the longest a replica issues certificates by revocation lists it has not confirmed with Consul: past it
    /// (Consul unreachable), the replica may be missing a revocation made through another one, so it refuses to sign
    /// (503 <c>revocations-stale</c>) until Consul answers again; watches go on from its cache. A healthy replica hears
    /// from Consul at least once per <see cref="Wait"/> (its blocking query), and reads the lists without blocking once half
    /// of this has passed without an answer, so this is at least twice the wait.
    /// Unset (the default): twice <see cref="Wait"/>, and at least 10 minutes (10 minutes with the default wait). Set: from
    /// twice <see cref="Wait"/> to 24 hours.
    /// </summary>
    public TimeSpan? RevocationsMaxStaleness { get; set; }

    /// <summary>The bound in force: <see cref="RevocationsMaxStaleness"/>, or its default for <paramref name="wait"/>.</summary>
    internal TimeSpan RevocationsMaxStalenessFor(TimeSpan wait) =>
        RevocationsMaxStaleness ?? TimeSpan.FromTicks(Math.Max(TimeSpan.FromMinutes(10).Ticks, wait.Ticks * 2));

    /// <summary>
    /// Gets or sets the TTL of the Consul session with which a replica holds the leader lock (<c>&lt;KeyPrefix&gt;leader</c>).
    /// The session is renewed every half TTL; a leader that has not renewed it for a whole TTL stops its leader-only
    /// steps. Default 15 seconds; from 1 second to 24 hours (Consul agents refuse less than their
    /// <c>session_ttl_min</c>, 10 seconds by default).
    /// </summary>
    public TimeSpan LockTtl { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Gets or sets the lock delay of the leader's session: after a leader's session ends without a release (a crash,
    /// an expiry), no replica becomes leader for this long. Default 15 seconds, Consul's; from 0 to 60 seconds.
    /// </summary>
    public TimeSpan LockDelay { get; set; } = TimeSpan.FromSeconds(15);
}
