using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MeshKit.Identity;

namespace MeshKit.Testing;

/// <summary>
/// A certificate authority in memory, for tests: a root made when it is created (never written anywhere) that issues
/// SPIFFE X.509-SVIDs on demand with the control service's profile (ECDSA P-256 leaf, not a CA, key usage
/// digitalSignature, EKU server and client, the SPIFFE ID as the only URI SAN, a short lifetime). Give it to
/// <c>services.AddMeshTestMode(ca)</c> in each app of a test; the apps then trust each other (and nothing else). Thread-safe.
/// </summary>
public sealed class MeshTestCertificateAuthority : IDisposable
{
    private readonly ECDsa _rootKey;
    private readonly X509Certificate2 _root;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private int _issued;
    private bool _disposed;

    /// <summary>Initializes a new CA for the trust domain <c>mesh.local</c> with one-hour certificates.</summary>
    public MeshTestCertificateAuthority()
        : this(new MeshTestCertificateAuthorityOptions())
    {
    }

    /// <summary>Initializes a new CA.</summary>
    /// <param name="options">Its trust domain, certificate lifetime and clock.</param>
    /// <exception cref="ArgumentException">The trust domain is not valid or the lifetime is not positive.</exception>
    public MeshTestCertificateAuthority(MeshTestCertificateAuthorityOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!SpiffeId.IsValidTrustDomain(options.TrustDomain, out var why))
        {
            throw new ArgumentException($"The trust domain '{options.TrustDomain}' is not valid: it {why}.", nameof(options));
        }

        if (options.CertificateLifetime <= TimeSpan.Zero)
        {
            throw new ArgumentException($"The certificate lifetime must be positive; it is {options.CertificateLifetime}.", nameof(options));
        }

        TrustDomain = options.TrustDomain;
        CertificateLifetime = options.CertificateLifetime;
        _time = options.TimeProvider ?? TimeProvider.System;
        _rootKey = CertificateAuthorityRoots.CreateKey();
        _root = CertificateAuthorityRoots.CreateRoot(
            _rootKey,
            TrustDomain,
            new X500DistinguishedName($"CN=MeshKit test CA {TrustDomain}, O=MeshKit.Testing"),
            _time.GetUtcNow(),
            TimeSpan.FromDays(2));
        TrustBundlePem = _root.ExportCertificatePem() + "\n";
    }

    /// <summary>Gets the trust domain the CA issues for.</summary>
    public string TrustDomain { get; }

    /// <summary>Gets the lifetime of each certificate it issues.</summary>
    public TimeSpan CertificateLifetime { get; }

    /// <summary>Gets the root certificate (public part only): the whole trust bundle of the hosts in test mode.</summary>
    public X509Certificate2 RootCertificate => _root;

    /// <summary>Gets the trust bundle as PEM (the root).</summary>
    public string TrustBundlePem { get; }

    /// <summary>Gets how many certificates the CA has issued (first certificates and renewals of every host).</summary>
    public int IssuedCount => Volatile.Read(ref _issued);

    /// <summary>
    /// Issues a certificate with its private key for <c>spiffe://&lt;trust-domain&gt;/ns/&lt;namespace&gt;/svc/&lt;service&gt;</c>,
    /// for a test that calls a mesh endpoint itself (a plain <c>HttpClient</c> presenting it) or checks a refusal.
    /// </summary>
    /// <param name="service">The service name.</param>
    /// <param name="namespace">The namespace (default <c>default</c>).</param>
    /// <returns>The certificate with its private key; the caller disposes it.</returns>
    /// <exception cref="ArgumentException">The names are not valid mesh names.</exception>
    public X509Certificate2 IssueCertificate(string service, string @namespace = SpiffeId.DefaultNamespace)
    {
        var id = SpiffeId.Create(TrustDomain, @namespace, service);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var leaf = Issue(id, new PublicKey(key));
        using var withKey = leaf.CopyWithPrivateKey(key);

        // Through PKCS#12 so the key is usable by TLS on every platform (SChannel refuses ephemeral keys).
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>Forgets the root's private key; the CA issues nothing more.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _rootKey.Dispose();
        }
    }

    /// <summary>Signs a CSR made by a host in test mode: it must verify and name <paramref name="expected"/> as its only URI SAN.</summary>
    internal string SignCsr(string csrPem, SpiffeId expected)
    {
        var request = CertificateRequest.LoadSigningRequestPem(csrPem, HashAlgorithmName.SHA256, CertificateRequestLoadOptions.UnsafeLoadCertificateExtensions);
        var uris = new List<string>();
        foreach (var extension in request.CertificateExtensions)
        {
            if (extension.Oid?.Value == SubjectAlternativeNames.ExtensionOid)
            {
                uris.AddRange(SubjectAlternativeNames.ReadUris(extension.RawData));
            }
        }

        if (uris.Count != 1 || !SpiffeId.TryParse(uris[0], out var id) || id != expected)
        {
            throw new InvalidDataException($"The test CA signs only a CSR naming {expected} as its one URI SAN; this one names {string.Join(", ", uris)}.");
        }

        using var leaf = Issue(id, request.PublicKey);
        return leaf.ExportCertificatePem() + "\n";
    }

    private X509Certificate2 Issue(SpiffeId id, PublicKey publicKey)
    {
        if (id.TrustDomain != TrustDomain)
        {
            throw new ArgumentException($"The test CA issues for trust domain '{TrustDomain}', not '{id.TrustDomain}'.", nameof(id));
        }

        var now = _time.GetUtcNow();

        // The control service's backdate: 30 s, or a tenth of a short lifetime so a 5-second certificate is not mostly past.
        var backdate = TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(30).Ticks, CertificateLifetime.Ticks / 10));
        var notBefore = now - backdate;
        var notAfter = now + CertificateLifetime;
        var rootNotAfter = new DateTimeOffset(_root.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        if (notAfter > rootNotAfter)
        {
            notAfter = rootNotAfter;
        }

        var subject = new X500DistinguishedNameBuilder();
        subject.AddOrganizationName("MeshKit");
        subject.AddOrganizationalUnitName(id.Namespace);
        subject.AddCommonName(id.Service);
        var request = new CertificateRequest(subject.Build(), publicKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], critical: false));
        request.CertificateExtensions.Add(SubjectAlternativeNames.Create(id.Value));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(publicKey, critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(_root, includeKeyIdentifier: true, includeIssuerAndSerial: false));

        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        serial[0] |= 0x01;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var leaf = request.Create(_root.SubjectName, X509SignatureGenerator.CreateForECDsa(_rootKey), notBefore, notAfter, serial);
            Interlocked.Increment(ref _issued);
            return leaf;
        }
    }
}
