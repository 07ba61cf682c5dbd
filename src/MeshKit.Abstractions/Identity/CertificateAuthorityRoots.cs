using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MeshKit.Identity;

/// <summary>
/// Makes the mesh's self-signed root CA certificates, the one generator behind the control service's generated roots and
/// the Aspire integration's development root, so that both carry the same profile (X.509-SVID signing certificates):
/// <list type="bullet">
/// <item>an ECDSA P-256 key, signed with SHA-256;</item>
/// <item>basicConstraints CA:TRUE without a path length (critical);</item>
/// <item>keyUsage keyCertSign and cRLSign (critical);</item>
/// <item>subjectKeyIdentifier (the SHA-1 of the public key, as RFC 5280 suggests);</item>
/// <item>subjectAltName with the trust domain's own SPIFFE ID, <c>spiffe://&lt;trust-domain&gt;</c> and no path:
/// the SPIFFE X.509-SVID specification says a signing certificate SHOULD itself be an SVID of the trust domain it
/// issues for.</item>
/// </list>
/// No authority key identifier (the root is its own issuer), no extended key usage, no name constraints (URI name
/// constraints are refused by many TLS stacks).
/// </summary>
public static class CertificateAuthorityRoots
{
    /// <summary>How far before "now" a new root's validity starts, so that a peer whose clock is a little behind accepts it.</summary>
    public static readonly TimeSpan Backdate = TimeSpan.FromHours(1);

    /// <summary>Creates the key of a new root: ECDSA on the NIST P-256 curve.</summary>
    /// <returns>The key; the caller owns it.</returns>
    public static ECDsa CreateKey() => ECDsa.Create(ECCurve.NamedCurves.nistP256);

    /// <summary>Creates a self-signed root for a trust domain over a key from <see cref="CreateKey"/>.</summary>
    /// <param name="key">The root's key: ECDSA P-256.</param>
    /// <param name="trustDomain">The trust domain whose SPIFFE ID the root carries.</param>
    /// <param name="subject">The root's subject (and issuer) name.</param>
    /// <param name="now">The current time; the root is valid from <see cref="Backdate"/> before it.</param>
    /// <param name="lifetime">How long after <paramref name="now"/> the root stays valid.</param>
    /// <returns>The root certificate, public part only; the key stays with the caller.</returns>
    /// <exception cref="ArgumentException">The trust domain is not valid, the key is not P-256, or the lifetime is not positive.</exception>
    public static X509Certificate2 CreateRoot(ECDsa key, string trustDomain, X500DistinguishedName subject, DateTimeOffset now, TimeSpan lifetime)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(trustDomain);
        ArgumentNullException.ThrowIfNull(subject);
        if (!SpiffeId.IsValidTrustDomain(trustDomain, out var why))
        {
            throw new ArgumentException($"Trust domain '{trustDomain}' is not valid: it {why}.", nameof(trustDomain));
        }

        if (key.KeySize != 256)
        {
            throw new ArgumentException($"A mesh root uses an ECDSA P-256 key (from {nameof(CreateKey)}); this key has {key.KeySize} bits.", nameof(key));
        }

        if (lifetime <= TimeSpan.Zero)
        {
            throw new ArgumentException($"The lifetime of a root must be positive; it is {lifetime}.", nameof(lifetime));
        }

        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        request.CertificateExtensions.Add(SubjectAlternativeNames.Create(SpiffeId.Prefix + trustDomain));
        using var withKey = request.CreateSelfSigned(now - Backdate, now + lifetime);
        return X509CertificateLoader.LoadCertificate(withKey.RawData);
    }
}
