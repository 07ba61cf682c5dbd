using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace MeshKit.Identity;

/// <summary>
/// The identity a workload holds at one moment: its X.509-SVID with private key, the chain up to the root, and the trust
/// bundle it validates peers against. Immutable; a renewal or a bundle change makes a new one.
/// </summary>
internal sealed class WorkloadIdentity
{
    internal WorkloadIdentity(SpiffeId id, X509Certificate2 certificate, X509Certificate2Collection intermediates, TrustBundle bundle, DateTimeOffset receivedAt)
    {
        Id = id;
        Certificate = certificate;
        Intermediates = intermediates;
        Bundle = bundle;
        NotBefore = new DateTimeOffset(certificate.NotBefore.ToUniversalTime(), TimeSpan.Zero);
        NotAfter = new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        SerialNumber = certificate.SerialNumber;
        ReceivedAt = receivedAt;

        // Built once per certificate: handshakes reuse it and never build a chain for our own certificate.
        CertificateContext = SslStreamCertificateContext.Create(certificate, intermediates, offline: true);
    }

    /// <summary>Gets the workload's SPIFFE ID.</summary>
    public SpiffeId Id { get; }

    /// <summary>Gets the certificate, with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>Gets the intermediates between the certificate and its root (empty when a root signs directly).</summary>
    public X509Certificate2Collection Intermediates { get; }

    /// <summary>Gets whether an intermediate signed the certificate (it must then be presented with the certificate).</summary>
    public bool HasIntermediates => Intermediates.Count > 0;

    /// <summary>Gets the trust bundle peers are validated against.</summary>
    public TrustBundle Bundle { get; }

    /// <summary>Gets the start of the certificate's validity.</summary>
    public DateTimeOffset NotBefore { get; }

    /// <summary>Gets the end of the certificate's validity.</summary>
    public DateTimeOffset NotAfter { get; }

    /// <summary>Gets the certificate's serial number (hex).</summary>
    public string SerialNumber { get; }

    /// <summary>Gets when this workload received the certificate (its renewal clock starts here, not at a backdated NotBefore).</summary>
    public DateTimeOffset ReceivedAt { get; }

    /// <summary>Gets the certificate's whole lifetime.</summary>
    public TimeSpan Lifetime => NotAfter - NotBefore;

    internal SslStreamCertificateContext CertificateContext { get; }

    /// <summary>Gets whether the certificate has expired at <paramref name="now"/>.</summary>
    /// <param name="now">The time to check.</param>
    /// <returns><see langword="true"/> when past NotAfter.</returns>
    public bool IsExpired(DateTimeOffset now) => now >= NotAfter;

    /// <summary>Returns a copy that trusts <paramref name="bundle"/> instead (a bundle change on the control channel).</summary>
    internal WorkloadIdentity WithBundle(TrustBundle bundle) => new(Id, Certificate, Intermediates, bundle, ReceivedAt);

    /// <summary>Creates the chain policy for validating peers: the bundle's roots only, no revocation fetch, no downloads.</summary>
    internal X509ChainPolicy CreateChainPolicy() => Bundle.CreateChainPolicy();
}
