namespace MeshKit.Discovery;

/// <summary>
/// What discovery knows of an endpoint besides its address: its version (canary subsets), zone and weight. Attached to
/// each <c>ServiceEndpoint</c> as a feature. Identity is never taken from here: a mesh call always expects the SPIFFE ID
/// derived from the destination's name.
/// </summary>
public interface IMeshEndpointMetadataFeature
{
    /// <summary>Gets the endpoint's metadata.</summary>
    MeshEndpointMetadata Metadata { get; }
}
