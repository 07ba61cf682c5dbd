namespace MeshKit;

/// <summary>MeshKit's settings, bound from the <c>Mesh</c> configuration section.</summary>
public sealed class MeshOptions
{
    /// <summary>The configuration section these options bind to.</summary>
    public const string SectionName = "Mesh";

    /// <summary>Gets or sets who this workload is.</summary>
    public MeshServiceOptions Service { get; set; } = new();

    /// <summary>Gets or sets the trust domain of the mesh. Default <c>mesh.local</c>; must equal the control service's.</summary>
    public string TrustDomain { get; set; } = "mesh.local";

    /// <summary>Gets or sets how this workload reaches and trusts the control service.</summary>
    public MeshControlPlaneOptions ControlPlane { get; set; } = new();

    /// <summary>Gets or sets when the workload certificate is renewed.</summary>
    public MeshIdentityOptions Identity { get; set; } = new();

    /// <summary>Gets or sets the mesh endpoint: the Kestrel endpoint that requires a mesh client certificate.</summary>
    public MeshEndpointOptions Endpoint { get; set; } = new();

    /// <summary>Gets or sets how mesh clients connect.</summary>
    public MeshTransportOptions Transport { get; set; } = new();

    /// <summary>Gets or sets which hosts mesh clients treat as mesh destinations, and what they do with the others.</summary>
    public MeshClientOptions Client { get; set; } = new();

    /// <summary>Gets or sets whether MeshKit builds OpenTelemetry providers for an app that has none.</summary>
    public MeshTelemetryOptions Telemetry { get; set; } = new();

    /// <summary>Gets or sets MeshKit's readiness endpoint.</summary>
    public MeshHealthOptions Health { get; set; } = new();
}
