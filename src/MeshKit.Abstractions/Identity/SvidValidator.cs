using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MeshKit.Identity;

/// <summary>
/// Validates X.509-SVIDs against a <see cref="TrustBundle"/>: custom root trust only (no machine store),
/// no network fetches, a leaf that is not a CA, exactly one strictly valid SPIFFE URI SAN, in the expected
/// trust domain.
/// </summary>
public static class SvidValidator
{
    private const string ServerAuthOid = "1.3.6.1.5.5.7.3.1";
    private const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";

    /// <summary>
    /// Validates a peer certificate; when <paramref name="chainVerified"/> is set, the TLS stack has already built its chain
    /// against the bundle's roots (through <see cref="System.Net.Security.SslClientAuthenticationOptions.CertificateChainPolicy"/>
    /// and <see cref="TrustBundle.CreateChainPolicy"/>), so it is not built twice.
    /// </summary>
    /// <param name="certificate">The peer's leaf certificate, or <see langword="null"/> when none was presented.</param>
    /// <param name="intermediates">Further certificates the peer sent, if any.</param>
    /// <param name="bundle">The roots to trust.</param>
    /// <param name="trustDomain">The trust domain the SPIFFE ID must belong to.</param>
    /// <param name="now">The time to validate at.</param>
    /// <param name="usage">Which extended key usage the leaf must allow, or <see langword="null"/> for either.</param>
    /// <param name="chainVerified">Whether the chain was already verified against <paramref name="bundle"/>.</param>
    /// <returns>The outcome, with a reason when refused.</returns>
    public static SvidValidationResult Validate(
        X509Certificate2? certificate,
        X509Certificate2Collection? intermediates,
        TrustBundle bundle,
        string trustDomain,
        DateTimeOffset now,
        SvidUsage? usage = null,
        bool chainVerified = false)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        ArgumentNullException.ThrowIfNull(trustDomain);
        if (certificate is null)
        {
            return SvidValidationResult.Reject(SvidRejection.NoCertificate, "No certificate was presented.");
        }

        // Time first: an expired SVID gets a reason that says so rather than a generic chain error.
        if (now.UtcDateTime > certificate.NotAfter.ToUniversalTime())
        {
            return SvidValidationResult.Reject(SvidRejection.Expired, $"The certificate expired at {certificate.NotAfter.ToUniversalTime():O}.");
        }

        if (now.UtcDateTime < certificate.NotBefore.ToUniversalTime())
        {
            return SvidValidationResult.Reject(SvidRejection.NotYetValid, $"The certificate is not valid before {certificate.NotBefore.ToUniversalTime():O}.");
        }

        var shape = CheckLeafShape(certificate, usage);
        if (shape is not null)
        {
            return SvidValidationResult.Reject(SvidRejection.NotAnSvid, shape);
        }

        IReadOnlyList<string> uris;
        try
        {
            uris = SubjectAlternativeNames.GetUris(certificate);
        }
        catch (CryptographicException ex)
        {
            return SvidValidationResult.Reject(SvidRejection.NotAnSvid, ex.Message);
        }

        if (uris.Count != 1)
        {
            return SvidValidationResult.Reject(SvidRejection.NotAnSvid, $"An X.509-SVID has exactly one URI SAN; this certificate has {uris.Count}.");
        }

        if (!SpiffeId.TryParse(uris[0], out var id, out var error))
        {
            return SvidValidationResult.Reject(SvidRejection.InvalidSpiffeId, $"The URI SAN is not a valid SPIFFE ID: {error}");
        }

        if (!string.Equals(id.TrustDomain, trustDomain, StringComparison.Ordinal))
        {
            return SvidValidationResult.Reject(SvidRejection.WrongTrustDomain, $"'{id}' belongs to trust domain '{id.TrustDomain}', not '{trustDomain}'.");
        }

        var chainError = chainVerified ? null : BuildChain(certificate, intermediates, bundle, now);
        if (chainError is not null)
        {
            return SvidValidationResult.Reject(SvidRejection.UntrustedChain, chainError);
        }

        return SvidValidationResult.Accept(id);
    }

    private static string? CheckLeafShape(X509Certificate2 certificate, SvidUsage? usage)
    {
        foreach (var extension in certificate.Extensions)
        {
            switch (extension)
            {
                case X509BasicConstraintsExtension basic when basic.CertificateAuthority:
                    return "The certificate is a CA certificate, not a leaf.";
                case X509KeyUsageExtension keyUsage when (keyUsage.KeyUsages & X509KeyUsageFlags.DigitalSignature) == 0:
                    return "The certificate's key usage lacks digitalSignature.";
                case X509KeyUsageExtension keyUsage when (keyUsage.KeyUsages & (X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign)) != 0:
                    return "A leaf SVID must not allow keyCertSign or cRLSign.";
                case X509EnhancedKeyUsageExtension eku when usage is not null:
                    var wanted = usage == SvidUsage.Server ? ServerAuthOid : ClientAuthOid;
                    var found = false;
                    foreach (var oid in eku.EnhancedKeyUsages)
                    {
                        found |= oid.Value == wanted;
                    }

                    if (!found)
                    {
                        return usage == SvidUsage.Server
                            ? "The certificate does not allow serverAuth."
                            : "The certificate does not allow clientAuth.";
                    }

                    break;
            }
        }

        return null;
    }

    private static string? BuildChain(X509Certificate2 leaf, X509Certificate2Collection? intermediates, TrustBundle bundle, DateTimeOffset now)
    {
        using var chain = new X509Chain { ChainPolicy = bundle.CreateChainPolicy() };
        var policy = chain.ChainPolicy;
        policy.VerificationTime = now.UtcDateTime;
        policy.VerificationTimeIgnored = false;
        if (intermediates is not null)
        {
            foreach (var intermediate in intermediates)
            {
                // The peer may echo its leaf and roots; only intermediates matter here, the bundle decides roots.
                if (!intermediate.RawDataMemory.Span.SequenceEqual(leaf.RawDataMemory.Span))
                {
                    policy.ExtraStore.Add(intermediate);
                }
            }
        }

        try
        {
            if (chain.Build(leaf))
            {
                // CustomRootTrust only succeeds when the chain ends in a bundle root; check it anyway.
                var root = chain.ChainElements[^1].Certificate;
                return bundle.Contains(root) ? null : "The chain does not end in a root of the trust bundle.";
            }

            var reasons = new List<string>();
            foreach (var status in chain.ChainStatus)
            {
                reasons.Add(status.Status.ToString());
            }

            return "The certificate chain does not lead to a root of the trust bundle (" + string.Join(", ", reasons) + ").";
        }
        catch (CryptographicException ex)
        {
            return "The certificate chain could not be built: " + ex.Message;
        }
    }
}
