namespace MeshKit.Discovery;

/// <summary>An endpoint's metadata.</summary>
/// <param name="Version">The instance's version (<c>Mesh:Service:Version</c> of the instance), or <see langword="null"/>.</param>
/// <param name="Zone">The instance's zone, or <see langword="null"/>.</param>
/// <param name="Weight">The instance's relative weight within its subset (default 100).</param>
/// <param name="Values">Every metadata key and value, for subsets keyed on other metadata.</param>
public sealed record MeshEndpointMetadata(string? Version, string? Zone, int Weight, IReadOnlyDictionary<string, string> Values)
    : IMeshEndpointMetadataFeature
{
    /// <summary>The weight of an endpoint that does not state one.</summary>
    public const int DefaultWeight = 100;

    /// <summary>Metadata with nothing known.</summary>
    public static readonly MeshEndpointMetadata Empty = new(null, null, DefaultWeight, new Dictionary<string, string>());

    MeshEndpointMetadata IMeshEndpointMetadataFeature.Metadata => this;

    /// <summary>Gets a metadata value by key (<c>version</c> and <c>zone</c> included).</summary>
    /// <param name="key">The key.</param>
    /// <returns>The value, or <see langword="null"/>.</returns>
    public string? Get(string key) => key switch
    {
        "version" => Version,
        "zone" => Zone,
        _ => Values.TryGetValue(key, out var value) ? value : null,
    };
}
