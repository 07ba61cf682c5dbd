using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MeshKit.Identity;

/// <summary>
/// Makes the mesh's self-signed root CA certificates, the one generator behind the control service's generated roots and
/// the Aspire integration's development root, so that both carry the same profile (X.509-SVID signing certificates), and
/// the intermediates a root signs for control-service replicas (<see cref="CreateIntermediate"/>):
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
        CheckArguments(key, trustDomain, subject, lifetime, "root");

        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        request.CertificateExtensions.Add(SubjectAlternativeNames.Create(SpiffeId.Prefix + trustDomain));
        using var withKey = request.CreateSelfSigned(now - Backdate, now + lifetime);
        return X509CertificateLoader.LoadCertificate(withKey.RawData);
    }
    /// <summary>
    /// Creates an intermediate CA certificate for one control-service replica, signed by a root of the trust domain: the
    /// replica issues workload certificates with it, and the root's key stays with whoever calls this (the operator, or
    /// the Aspire AppHost in development). Same profile as a root, except: basicConstraints CA:TRUE with a path length of 0
    /// (it signs workloads only, never another CA), an authority key identifier naming the root, and a validity cut at the
    /// root's own NotAfter.
    /// </summary>
    /// <param name="root">The signing root, a CA certificate of <paramref name="trustDomain"/>.</param>
    /// <param name="rootKey">The root's private key (ECDSA or RSA).</param>
    /// <param name="key">The intermediate's key: ECDSA P-256 from <see cref="CreateKey"/>.</param>
    /// <param name="trustDomain">The trust domain whose SPIFFE ID the intermediate carries.</param>
    /// <param name="subject">The intermediate's subject name.</param>
    /// <param name="now">The current time; the intermediate is valid from <see cref="Backdate"/> before it (not before the root).</param>
    /// <param name="lifetime">How long after <paramref name="now"/> it stays valid (at most until the root expires).</param>
    /// <returns>The intermediate certificate, public part only.</returns>
    /// <exception cref="ArgumentException">
    /// The trust domain is not valid, the key is not P-256, the lifetime is not positive, <paramref name="root"/> is not a CA
    /// certificate, is expired at <paramref name="now"/>, or does not belong to <paramref name="rootKey"/>.
    /// </exception>
    public static X509Certificate2 CreateIntermediate(
        X509Certificate2 root,
        AsymmetricAlgorithm rootKey,
        ECDsa key,
        string trustDomain,
        X500DistinguishedName subject,
        DateTimeOffset now,
        TimeSpan lifetime)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(rootKey);
        CheckArguments(key, trustDomain, subject, lifetime, "intermediate");

        if (root.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault() is not { CertificateAuthority: true })
        {
            throw new ArgumentException($"'{root.Subject}' is not a CA certificate (basicConstraints CA:TRUE is missing).", nameof(root));
        }

        var rootNotBefore = new DateTimeOffset(root.NotBefore.ToUniversalTime(), TimeSpan.Zero);
        var rootNotAfter = new DateTimeOffset(root.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        if (now >= rootNotAfter || now < rootNotBefore)
        {
            throw new ArgumentException($"The root '{root.Subject}' is not valid now (valid {rootNotBefore:u} to {rootNotAfter:u}).", nameof(root));
        }

        X509SignatureGenerator generator = rootKey switch
        {
            ECDsa ecdsa when root.GetECDsaPublicKey() is { } publicKey && SameKey(publicKey.ExportSubjectPublicKeyInfo(), ecdsa.ExportSubjectPublicKeyInfo())
                => X509SignatureGenerator.CreateForECDsa(ecdsa),
            RSA rsa when root.GetRSAPublicKey() is { } publicKey && SameKey(publicKey.ExportSubjectPublicKeyInfo(), rsa.ExportSubjectPublicKeyInfo())
                => X509SignatureGenerator.CreateForRSA(rsa, RSASignaturePadding.Pkcs1),
            _ => throw new ArgumentException($"The key given is not the private key of '{root.Subject}'.", nameof(rootKey)),
        };

        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: true, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(root, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        request.CertificateExtensions.Add(SubjectAlternativeNames.Create(SpiffeId.Prefix + trustDomain));
        var notBefore = now - Backdate < rootNotBefore ? rootNotBefore : now - Backdate;
        var notAfter = now + lifetime > rootNotAfter ? rootNotAfter : now + lifetime;
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        serial[0] |= 0x01;
        return request.Create(root.SubjectName, generator, notBefore, notAfter, serial);
    }

    private static bool SameKey(byte[] a, byte[] b) => a.AsSpan().SequenceEqual(b);

    private static void CheckArguments(ECDsa key, string trustDomain, X500DistinguishedName subject, TimeSpan lifetime, string kind)
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
            throw new ArgumentException($"A mesh {kind} uses an ECDSA P-256 key (from {nameof(CreateKey)}); this key has {key.KeySize} bits.", nameof(key));
        }

        if (lifetime <= TimeSpan.Zero)
        {
            throw new ArgumentException($"The lifetime of {(kind == "root" ? "a root" : "an intermediate")} must be positive; it is {lifetime}.", nameof(lifetime));
        }
    }
}
