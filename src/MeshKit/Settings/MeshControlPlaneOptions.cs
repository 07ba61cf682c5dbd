namespace MeshKit;

/// <summary>How this workload reaches and trusts the control service.</summary>
public sealed class MeshControlPlaneOptions
{
    /// <summary>Gets or sets the control service's HTTPS address, for example <c>https://127.0.0.1:7443</c>. Required.</summary>
    public Uri? Address { get; set; }

    /// <summary>Gets or sets the join token for the first certificate. Never logged.</summary>
    public string? JoinToken { get; set; }

    /// <summary>
    /// Gets or sets the PEM file of the roots that the control service's certificate chains to: how the workload trusts
    /// the control service on first contact. The control service writes it as <c>trust-bundle.pem</c> in its data
    /// directory. Required.
    /// </summary>
    public string? TrustBundlePath { get; set; }

    /// <summary>Gets or sets how long startup waits for a first certificate before it fails. Default 30 seconds.</summary>
    public TimeSpan StartupTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Gets or sets the wait of the control-channel long poll. Default 5 minutes; tests use 1 second.</summary>
    public TimeSpan WatchWait { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Gets or sets whether the workload may start on its local policy alone when, within <see cref="StartupTimeout"/>,
    /// the control service cannot say what its central policy is (its policy store is unreachable). Default
    /// <see langword="false"/>: startup fails instead, because central authorization rules could be missing.
    /// </summary>
    public bool StartWithoutCentralPolicy { get; set; }

    /// <summary>
    /// Gets or sets the folder where the workload keeps the last trust bundle the control service sent it
    /// (<c>trust-bundle.pem</c>, owner-only), so that a restart after a CA rotation still trusts the control service when
    /// <see cref="TrustBundlePath"/> holds only the old root. Unset: <c>&lt;LocalApplicationData&gt;/MeshKit/workloads/&lt;TrustDomain&gt;/&lt;Namespace&gt;/&lt;Name&gt;</c>.
    /// An empty value turns it off.
    /// </summary>
    public string? StateDirectory { get; set; }
}
