using Aspire.Hosting.ApplicationModel;

namespace MeshKit.Hosting.Aspire;

/// <summary>One resource that joined the mesh with <c>WithMesh()</c>: who it is and where its mesh endpoint is.</summary>
/// <param name="Resource">The project resource.</param>
/// <param name="Service">The mesh service name (a DNS label).</param>
/// <param name="Namespace">The mesh namespace.</param>
/// <param name="Version">The version metadata of its endpoint (for canary subsets), if any.</param>
/// <param name="JoinToken">The join token generated for it in this run.</param>
/// <param name="MeshEndpoint">Its mesh endpoint.</param>
internal sealed record MeshWorkload(
    IResource Resource,
    string Service,
    string Namespace,
    string? Version,
    string JoinToken,
    EndpointReference MeshEndpoint)
{
    /// <summary>Gets the destination name as a caller in <paramref name="callerNamespace"/> writes it: <c>orders</c>, or <c>orders.payments</c>.</summary>
    public string DestinationFor(string callerNamespace) =>
        string.Equals(Namespace, callerNamespace, StringComparison.Ordinal) ? Service : $"{Service}.{Namespace}";
}
