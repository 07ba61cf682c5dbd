namespace MeshKit.Consul;

/// <summary>
/// How MeshKit talks to Consul, bound from the <c>Mesh:Discovery:Consul</c> configuration section.
/// Every setting has a safe default; <see cref="ConsulOptionsValidator"/> names the full key of a bad value.
/// </summary>
public sealed class ConsulOptions
{
    /// <summary>The configuration section these options bind to.</summary>
    public const string SectionPath = "Mesh:Discovery:Consul";

    /// <summary>The default agent address, as Consul itself uses it.</summary>
    public static readonly Uri DefaultAddress = new("http://127.0.0.1:8500/");

    /// <summary>
    /// Gets or sets the address of the Consul agent's HTTP API, for example <c>http://127.0.0.1:8500</c> or
    /// <c>https://consul.internal:8501</c>. A path is kept as a prefix (for an agent behind a proxy).
    /// Default <c>http://127.0.0.1:8500</c>.
    /// </summary>
    public Uri Address { get; set; } = DefaultAddress;

    /// <summary>
    /// Gets or sets the ACL token sent as <c>X-Consul-Token</c> on every request. Never logged. Default: none
    /// (the agent's default token applies).
    /// </summary>
    public string? Token { get; set; }

    /// <summary>
    /// Gets or sets the datacenter that health, catalog and KV reads ask (<c>?dc=</c>). Default: none, which means
    /// the agent's own datacenter.
    /// </summary>
    public string? Datacenter { get; set; }

    /// <summary>Gets or sets the TLS settings used when <see cref="Address"/> is <c>https</c>.</summary>
    public ConsulTlsOptions Tls { get; set; } = new();

    /// <summary>
    /// Gets or sets how long a blocking query waits for a change (<c>?wait=</c>). Consul caps it at 10 minutes and adds up
    /// to <c>wait/16</c> of jitter. Default 5 minutes; any value from 1 second to 10 minutes.
    /// </summary>
    public TimeSpan Wait { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Gets or sets the shortest time between the starts of two requests of one blocking query, so that a query
    /// that returns early with an unchanged index cannot spin. Default 500 ms; any value from 0 to 1 minute.
    /// </summary>
    public TimeSpan MinimumQueryInterval { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// Gets or sets the timeout of a request that does not block. A blocking request may take
    /// <c>Wait + Wait/16 + RequestTimeout</c>. Default 10 seconds; any value from 1 second to 5 minutes.
    /// </summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Gets or sets the first delay after a failed query; each further failure doubles it (with jitter) up to
    /// <see cref="RetryMaxDelay"/>. Default 500 ms; any value from 10 ms to 1 minute.
    /// </summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Gets or sets the longest delay between retries of a failing query. Default 20 seconds; at least <see cref="RetryBaseDelay"/>, at most 10 minutes.</summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(20);
}
