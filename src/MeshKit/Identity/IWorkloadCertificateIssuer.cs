namespace MeshKit.Identity;

/// <summary>A workload certificate as an issuer returns it: the chain (leaf first) and the trust bundle, both PEM.</summary>
/// <param name="CertificateChainPem">The leaf followed by the intermediates between it and a root of the bundle.</param>
/// <param name="TrustBundlePem">The roots peers are validated against.</param>
internal sealed record IssuedWorkloadCertificate(string CertificateChainPem, string TrustBundlePem);

/// <summary>
/// Where the workload's certificates come from. In every real host, the control service: the join token for the first
/// certificate (and after expiry), then renewal over mTLS. The renewal loop is the same whoever issues.
/// </summary>
internal interface IWorkloadCertificateIssuer
{
    /// <summary>Describes the issuer, for messages: the control service's replicas, or the in-process CA.</summary>
    /// <returns>The description.</returns>
    string Describe();

    /// <summary>Checks, before the first request, what issuance needs (the trust-bundle file), so a wrong setting fails startup.</summary>
    void Prepare();

    /// <summary>Signs a PEM CSR made in this process.</summary>
    /// <param name="csrPem">The CSR, naming the workload's SPIFFE ID as its only URI SAN.</param>
    /// <param name="useJoinToken">Whether to authenticate with the join token (first issuance or after expiry) rather than the current certificate.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <returns>The certificate chain and the trust bundle.</returns>
    Task<IssuedWorkloadCertificate> SignAsync(string csrPem, bool useJoinToken, CancellationToken cancellationToken);
}

/// <summary>
/// An issuer inside the process instead of the control service: test mode, registered only by the MeshKit.Testing
/// package's <c>AddMeshTestMode</c> (this type is internal, so no configuration and no app code outside the MeshKit family
/// can make one). A host with one needs no control-service address, join token or trust-bundle file, has no control channel
/// (no central policy, no revocations, no bundle pushes), and never writes to <c>Mesh:ControlPlane:StateDirectory</c>.
/// </summary>
internal abstract class InProcessCertificateIssuer : IWorkloadCertificateIssuer
{
    /// <inheritdoc/>
    public abstract string Describe();

    /// <inheritdoc/>
    public void Prepare()
    {
    }

    /// <inheritdoc/>
    public abstract Task<IssuedWorkloadCertificate> SignAsync(string csrPem, bool useJoinToken, CancellationToken cancellationToken);
}
