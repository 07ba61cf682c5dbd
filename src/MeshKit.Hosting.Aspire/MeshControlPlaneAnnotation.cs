using Aspire.Hosting.ApplicationModel;

namespace MeshKit.Hosting.Aspire;

/// <summary>
/// Marks the control-service resource made by <c>AddMeshControlPlane()</c> and carries what <c>WithMesh()</c> needs:
/// the trust domain, the development CA's root, and the workloads that joined, so that join tokens and static discovery
/// can be computed when the processes start (after every <c>WithMesh()</c> call has been made). With several replicas
/// every replica carries the same annotation, which lists them all.
/// </summary>
internal sealed class MeshControlPlaneAnnotation(string trustDomain, DevelopmentCertificateAuthority ca, string httpsEndpointName, string stateDirectory) : IResourceAnnotation
{
    private readonly List<MeshWorkload> _workloads = [];
    private readonly List<MeshControlPlaneReplica> _replicas = [];
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

    /// <summary>Gets the control service's replicas, the resource <c>AddMeshControlPlane()</c> returned first.</summary>
    public IReadOnlyList<MeshControlPlaneReplica> Replicas
    {
        get
        {
            lock (_gate)
            {
                return [.. _replicas];
            }
        }
    }

    public void AddReplica(MeshControlPlaneReplica replica)
    {
        lock (_gate)
        {
            _replicas.Add(replica);
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

/// <summary>One control-service replica: its resource and its HTTPS endpoint.</summary>
/// <param name="Resource">The replica's resource (project, executable or container).</param>
/// <param name="Endpoint">Its <c>https</c> endpoint.</param>
internal sealed record MeshControlPlaneReplica(IResource Resource, EndpointReference Endpoint);
