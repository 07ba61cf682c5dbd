namespace MeshKit.Consul;

/// <summary>What to ask <c>/v1/health/service/&lt;name&gt;</c> for.</summary>
public sealed record ConsulHealthQuery
{
    /// <summary>The query MeshKit discovery uses: passing instances only, in the configured datacenter.</summary>
    public static readonly ConsulHealthQuery Passing = new();

    /// <summary>
    /// Gets a value indicating whether only instances whose every check passes are returned (<c>?passing</c>). An
    /// instance with a warning check is left out. Default <see langword="true"/>.
    /// </summary>
    public bool PassingOnly { get; init; } = true;

    /// <summary>
    /// Gets a filter expression (<c>?filter=</c>), for example <c>Service.Meta.version == "v2"</c> or
    /// <c>Service.Tags contains "canary"</c>. Default: none.
    /// </summary>
    public string? Filter { get; init; }

    /// <summary>Gets a tag every returned instance must have (<c>?tag=</c>). Default: none.</summary>
    public string? Tag { get; init; }

    /// <summary>Gets the datacenter to ask (<c>?dc=</c>); default <see cref="ConsulOptions.Datacenter"/>.</summary>
    public string? Datacenter { get; init; }
}
