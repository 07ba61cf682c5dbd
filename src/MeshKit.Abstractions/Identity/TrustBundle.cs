using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace MeshKit.Identity;

/// <summary>
/// The set of root certificates a trust domain trusts. Several roots may be trusted at once, so that the
/// certificate authority can be rotated with an overlap. Immutable: a change makes a new bundle.
/// </summary>
public sealed class TrustBundle
{
    private readonly X509Certificate2Collection _roots;

    private TrustBundle(X509Certificate2Collection roots, string pem, string version)
    {
        _roots = roots;
        Pem = pem;
        Version = version;
    }

    /// <summary>Gets the root certificates.</summary>
    public IReadOnlyList<X509Certificate2> Roots => [.. _roots];

    /// <summary>Gets the roots as concatenated PEM.</summary>
    public string Pem { get; }

    /// <summary>
    /// Gets a short content hash of the bundle (hex of SHA-256 over the sorted root thumbprints), the same
    /// wherever the same roots are trusted.
    /// </summary>
    public string Version { get; }

    /// <summary>
    /// Creates the chain policy a TLS handshake should validate peers with: these roots only (custom root trust, never the
    /// machine's store), no revocation checks and no certificate downloads.
    /// </summary>
    /// <returns>A new policy; the caller owns it.</returns>
    public X509ChainPolicy CreateChainPolicy()
    {
        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = X509RevocationMode.NoCheck,
            DisableCertificateDownloads = true,
        };
        policy.CustomTrustStore.AddRange(_roots);
        return policy;
    }

    /// <summary>Creates a bundle from root certificates.</summary>
    /// <param name="roots">The roots; at least one.</param>
    /// <returns>The bundle.</returns>
    /// <exception cref="ArgumentException">No roots were given.</exception>
    public static TrustBundle Create(IEnumerable<X509Certificate2> roots)
    {
        ArgumentNullException.ThrowIfNull(roots);
        var collection = new X509Certificate2Collection();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var root in roots)
        {
            // The same root listed twice is one root.
            if (seen.Add(root.GetCertHashString(HashAlgorithmName.SHA256)))
            {
                collection.Add(root);
            }
        }

        if (collection.Count == 0)
        {
            throw new ArgumentException("A trust bundle needs at least one root certificate.", nameof(roots));
        }

        var pem = new StringBuilder();
        foreach (var root in collection)
        {
            pem.Append(root.ExportCertificatePem()).Append('\n');
        }

        var hashes = seen.Order(StringComparer.Ordinal);
        var version = Convert.ToHexStringLower(SHA256.HashData(Encoding.ASCII.GetBytes(string.Join(",", hashes))))[..16];
        return new TrustBundle(collection, pem.ToString(), version);
    }

    /// <summary>Reads a bundle from PEM text holding one or more certificates.</summary>
    /// <param name="pem">The PEM text.</param>
    /// <returns>The bundle.</returns>
    /// <exception cref="FormatException">The text holds no certificate or a malformed one.</exception>
    public static TrustBundle FromPem(string pem)
    {
        ArgumentNullException.ThrowIfNull(pem);
        var collection = new X509Certificate2Collection();
        try
        {
            collection.ImportFromPem(pem);
        }
        catch (CryptographicException ex)
        {
            throw new FormatException("The trust bundle holds a malformed certificate.", ex);
        }

        if (collection.Count == 0)
        {
            throw new FormatException("The trust bundle holds no PEM certificate.");
        }

        return Create(collection);
    }

    /// <summary>Whether a certificate is one of this bundle's roots.</summary>
    /// <param name="certificate">The certificate.</param>
    /// <returns><see langword="true"/> when it is a root of this bundle.</returns>
    public bool Contains(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        foreach (var root in _roots)
        {
            if (root.RawDataMemory.Span.SequenceEqual(certificate.RawDataMemory.Span))
            {
                return true;
            }
        }

        return false;
    }
}
