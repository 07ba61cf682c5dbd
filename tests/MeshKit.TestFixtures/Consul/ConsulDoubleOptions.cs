namespace MeshKit.Testing.Consul;

/// <summary>How a <see cref="ConsulDouble"/> behaves where Consul has settings.</summary>
public sealed class ConsulDoubleOptions
{
    /// <summary>Gets or sets the datacenter the double is; <c>?dc=</c> naming another is answered 500 "No path to datacenter".</summary>
    public string Datacenter { get; set; } = "dc1";

    /// <summary>Gets or sets the name of the one node (agent) every service is registered on.</summary>
    public string NodeName { get; set; } = "consul-double";

    /// <summary>Gets or sets the node's address: what an instance registered without an address is reached on.</summary>
    public string NodeAddress { get; set; } = "127.0.0.1";

    /// <summary>
    /// Gets or sets the ACL token every request must carry in <c>X-Consul-Token</c>; requests without it are answered
    /// 403. <see langword="null"/> (default) accepts every request, as an agent with ACLs disabled does.
    /// </summary>
    public string? RequiredToken { get; set; }

    /// <summary>
    /// Gets or sets the shortest <c>DeregisterCriticalServiceAfter</c>; shorter values are raised to it. Consul's is
    /// 1 minute (the default); tests may lower it.
    /// </summary>
    public TimeSpan MinimumDeregisterCriticalServiceAfter { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Gets or sets how often critical services are reaped. Consul's reaper runs every 30 seconds (the default).</summary>
    public TimeSpan ReapInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Gets or sets the shortest session TTL accepted; a session create with a shorter (non-zero) TTL is answered 500
    /// "Invalid Session TTL". Consul's agents default to 10 seconds (<c>session_ttl_min</c>, the default here); tests may lower it.
    /// </summary>
    public TimeSpan MinimumSessionTtl { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Gets or sets how many TTLs an unrenewed session lives before it is invalidated. Consul promises at least one and
    /// waits two (<c>SessionTTLMultiplier</c>, the default here).
    /// </summary>
    public double SessionTtlMultiplier { get; set; } = 2;

    /// <summary>Gets or sets how often TTLs are checked for expiry.</summary>
    public TimeSpan TickInterval { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Gets or sets the port to listen on; 0 (default) picks a free one, kept across restarts.</summary>
    public int Port { get; set; }
}

/// <summary>A fault the double injects into its answers.</summary>
public enum ConsulDoubleFault
{
    /// <summary>Answer normally.</summary>
    None,

    /// <summary>Answer every matching request 500 with a short text body, as Consul does when it has no leader.</summary>
    ServerError,

    /// <summary>Answer every matching read 200 with a current <c>X-Consul-Index</c> and a truncated JSON body.</summary>
    MalformedBody,
}

/// <summary>One request the double received.</summary>
/// <param name="Method">The HTTP method.</param>
/// <param name="Path">The path, for example <c>/v1/health/service/orders</c>.</param>
/// <param name="Query">The query string, with its leading <c>?</c>, or empty.</param>
/// <param name="Token">The <c>X-Consul-Token</c> header (or <c>?token=</c>), or <see langword="null"/> when none was sent.</param>
/// <param name="ReceivedAt">When the request arrived.</param>
public sealed record ConsulDoubleRequest(string Method, string Path, string Query, string? Token, DateTimeOffset ReceivedAt);
