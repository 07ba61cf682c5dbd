namespace MeshKit;

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
