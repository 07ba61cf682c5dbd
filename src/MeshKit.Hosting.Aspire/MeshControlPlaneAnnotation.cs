using Aspire.Hosting.ApplicationModel;

namespace MeshKit.Hosting.Aspire;

/// <summary>
/// Marks the control-service resource made by <c>AddMeshControlPlane()</c> and carries what <c>WithMesh()</c> needs:
/// the trust domain, the development CA's root, and the workloads that joined, so that join tokens and static discovery
/// can be computed when the processes start (after every <c>WithMesh()</c> call has been made).
/// </summary>
internal sealed class MeshControlPlaneAnnotation(string trustDomain, DevelopmentCertificateAuthority ca, string httpsEndpointName, string stateDirectory) : IResourceAnnotation
{
    private readonly List<MeshWorkload> _workloads = [];
    private readonly Lock _gate = new();

    public string TrustDomain { get; } = trustDomain;

    public DevelopmentCertificateAuthority CertificateAuthority { get; } = ca;

    public string HttpsEndpointName { get; } = httpsEndpointName;

    /// <summary>Gets the mesh's state folder (<c>.meshkit/</c> next to the AppHost by default); workloads keep theirs under it.</summary>
    public string StateDirectory { get; } = stateDirectory;

    /// <summary>Gets a snapshot of the workloads, in the order they joined.</summary>
    public IReadOnlyList<MeshWorkload> Workloads
    {
        get
        {
            lock (_gate)
            {
                return [.. _workloads];
            }
        }
    }

    public void Add(MeshWorkload workload)
    {
        lock (_gate)
        {
            if (_workloads.Any(w => ReferenceEquals(w.Resource, workload.Resource)))
            {
                throw new InvalidOperationException($"Resource '{workload.Resource.Name}' already joined the mesh; call WithMesh() once per resource.");
            }

            _workloads.Add(workload);
        }
    }
}
