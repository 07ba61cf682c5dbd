using System.Collections.Concurrent;

namespace MeshKit.ControlPlane.Workloads;

/// <summary>What the control service knows of one workload instance.</summary>
public sealed record WorkloadStatus
{
    /// <summary>Gets the workload's SPIFFE ID.</summary>
    public required string SpiffeId { get; init; }

    /// <summary>
    /// Gets the control-service replica the workload talks to, as that replica registered itself (with several replicas on
    /// Consul every replica lists every workload); <see langword="null"/> on a single control service.
    /// </summary>
    public string? Replica { get; init; }

    /// <summary>Gets the instance id the workload reported, when it did (replicas share a SPIFFE ID).</summary>
    public string? Instance { get; init; }

    /// <summary>Gets the serial number (hex) of the certificate the workload holds.</summary>
    public required string CertificateSerial { get; init; }

    /// <summary>Gets when that certificate expires.</summary>
    public required DateTimeOffset NotAfter { get; init; }

    /// <summary>Gets when that certificate became valid, so tools can tell how much of its lifetime is left.</summary>
    public DateTimeOffset? NotBefore { get; init; }

    /// <summary>Gets the distinguished name of that certificate's issuer, so CA rotation can tell which root a workload's certificate comes from.</summary>
    public string? CertificateIssuer { get; init; }

    /// <summary>Gets the trust bundle version the workload runs, when it reported one.</summary>
    public string? BundleVersion { get; init; }

    /// <summary>Gets the policy version the workload applied, when it reported one.</summary>
    public string? PolicyVersion { get; init; }

    /// <summary>Gets the version of the central policy the workload last received, when it reported one.</summary>
    public string? CentralPolicyVersion { get; init; }

    /// <summary>Gets the endpoints the workload's outlier detection has ejected, as <c>orders=10.0.0.1:443,...;inventory=...</c>.</summary>
    public string? EjectedEndpoints { get; init; }

    /// <summary>Gets the service version the workload reported (its <c>Mesh:Service:Version</c>).</summary>
    public string? ServiceVersion { get; init; }

    /// <summary>Gets when the control service last heard from the workload.</summary>
    public required DateTimeOffset LastSeen { get; init; }
}
