namespace MeshKit.Discovery;

/// <summary>One endpoint of the static discovery section <c>Mesh:Discovery:Static:&lt;service&gt;</c>.</summary>
public sealed class StaticEndpointOptions
{
    /// <summary>Gets or sets the address: <c>host:port</c>, <c>ip:port</c> or <c>https://host:port</c>.</summary>
    public string? Address { get; set; }

    /// <summary>Gets or sets the instance's version, for canary subsets.</summary>
    public string? Version { get; set; }

    /// <summary>Gets or sets the instance's zone.</summary>
    public string? Zone { get; set; }

    /// <summary>Gets or sets the instance's relative weight (default 100).</summary>
    public int? Weight { get; set; }

    /// <summary>Gets further metadata (key and value), for subsets keyed on other metadata.</summary>
    public Dictionary<string, string> Metadata { get; } = new(StringComparer.Ordinal);
}
