namespace MeshKit.Testing;

/// <summary>Settings of a <see cref="MeshTestCertificateAuthority"/>.</summary>
public sealed class MeshTestCertificateAuthorityOptions
{
    /// <summary>
    /// Gets or sets the trust domain the CA issues for (default <c>mesh.local</c>, MeshKit's default). A host in test mode
    /// must have the same <c>Mesh:TrustDomain</c>, or it does not start.
    /// </summary>
    public string TrustDomain { get; set; } = "mesh.local";

    /// <summary>
    /// Gets or sets the lifetime of each workload certificate (default one hour). Set a few seconds to see renewal happen
    /// in a test: hosts renew at <c>Mesh:Identity:RenewalFraction</c> of it, as with the control service.
    /// </summary>
    public TimeSpan CertificateLifetime { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Gets or sets the clock certificates are dated by (default the system clock).</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;
}
