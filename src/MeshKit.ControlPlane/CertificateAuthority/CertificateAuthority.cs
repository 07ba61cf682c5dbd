using System.Net;
using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using MeshKit.ControlPlane.Signing;
using MeshKit.ControlPlane.Storage;
using MeshKit.Identity;
using Microsoft.Extensions.Options;

namespace MeshKit.ControlPlane.CertificateAuthority;

/// <summary>A certificate that signs workload certificates, with its key and the chain up to (not including) its root.</summary>
/// <param name="Id">A stable name for the signer (the file stem for generated roots).</param>
/// <param name="Certificate">The signing certificate (a root or an intermediate).</param>
/// <param name="Key">Its private key.</param>
/// <param name="Chain">The signing certificate followed by any intermediates above it, excluding the root when the signer is not itself a root.</param>
internal sealed record Signer(string Id, X509Certificate2 Certificate, AsymmetricAlgorithm Key, IReadOnlyList<X509Certificate2> Chain);

/// <summary>What a CA state trusts and issues under: the roots it publishes and the root its issuing certificate chains to.</summary>
/// <param name="Bundle">The trust bundle (roots only).</param>
/// <param name="Issuer">The certificate that signs workload certificates (a root, or an intermediate).</param>
/// <param name="IssuingRoot">The root of the bundle that <paramref name="Issuer"/> chains to (itself for a root).</param>
internal sealed record CaTrust(TrustBundle Bundle, X509Certificate2 Issuer, X509Certificate2 IssuingRoot);

/// <summary>A CA change refused because another replica's trust would not hold with it (see <see cref="ReplicaTrust"/>).</summary>
internal sealed class CaTrustConflictException(string message) : InvalidOperationException(message);

/// <summary>A certificate issued by <see cref="CertificateAuthority"/>.</summary>
/// <remarks>
/// The sign endpoint uses the fields and the PEM only; <see cref="Leaf"/> is loaded when first asked for (loading a
/// certificate costs more than signing it with OpenSSL 3.0).
/// </remarks>
internal sealed class IssuedCertificate
{
    private readonly byte[]? _der;
    private X509Certificate2? _leaf;

    /// <summary>Initializes a new instance of the <see cref="IssuedCertificate"/> class from a loaded certificate.</summary>
    public IssuedCertificate(X509Certificate2 leaf, string chainPem, TrustBundle bundle)
    {
        _leaf = leaf;
        ChainPem = chainPem;
        Bundle = bundle;
        SerialNumber = leaf.SerialNumber;
        NotBefore = new DateTimeOffset(leaf.NotBefore.ToUniversalTime(), TimeSpan.Zero);
        NotAfter = new DateTimeOffset(leaf.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        Issuer = leaf.Issuer;
    }

    /// <summary>Initializes a new instance of the <see cref="IssuedCertificate"/> class from its DER and the fields it encodes.</summary>
    public IssuedCertificate(byte[] der, string serialNumber, DateTimeOffset notBefore, DateTimeOffset notAfter, string issuer, string chainPem, TrustBundle bundle)
    {
        _der = der;
        ChainPem = chainPem;
        Bundle = bundle;
        SerialNumber = serialNumber;
        NotBefore = notBefore;
        NotAfter = notAfter;
        Issuer = issuer;
    }

    /// <summary>Gets the issued certificate (public part only), loaded on first use; the caller disposes it.</summary>
    public X509Certificate2 Leaf
    {
        get
        {
            if (_leaf is null)
            {
                var loaded = X509CertificateLoader.LoadCertificate(_der!);
                if (Interlocked.CompareExchange(ref _leaf, loaded, null) is not null)
                {
                    loaded.Dispose();
                }
            }

            return _leaf;
        }
    }

    /// <summary>Gets the serial number as <see cref="X509Certificate2.SerialNumber"/> shows it.</summary>
    public string SerialNumber { get; }

    /// <summary>Gets the start of validity, as encoded (whole seconds, UTC).</summary>
    public DateTimeOffset NotBefore { get; }

    /// <summary>Gets the end of validity, as encoded (whole seconds, UTC).</summary>
    public DateTimeOffset NotAfter { get; }

    /// <summary>Gets the issuer's name as X509Certificate2.Issuer shows it.</summary>
    public string Issuer { get; }

    /// <summary>Gets the PEM of the leaf followed by the intermediates between it and the root.</summary>
    public string ChainPem { get; }

    /// <summary>Gets the trust bundle at the time of issuance.</summary>
    public TrustBundle Bundle { get; }
}

/// <summary>
/// The control service's certificate authority: a root it generates on first start and persists, or a root or
/// intermediate supplied by the user. The trust bundle may hold several roots so that the CA can be rotated with an
/// overlap: a new root is added to the bundle first, issuance switches to it later, and the old root is removed last.
/// Replicas each hold their own intermediate under the operator's root (docs/security.md, "One CA across replicas"); a
/// user-supplied CA is rotated by replacing its files and <see cref="Reload"/>, one replica at a time. Every change that
/// alters the bundle or the issuing root can be checked against the other replicas first (<see cref="ReplicaTrust"/>).
/// </summary>
internal sealed class CertificateAuthority : IDisposable
{
    private const string StateFileName = "state.json";

    /// <summary>How long a generated root is valid.</summary>
    private static readonly TimeSpan RootLifetime = TimeSpan.FromDays(3653);
    private readonly ControlPlaneOptions _options;
    private readonly TimeProvider _time;
    private readonly string _caDirectory;
    private readonly bool _userSupplied;
    private readonly Lock _gate = new();
    private State _state;

    public CertificateAuthority(IOptions<ControlPlaneOptions> options, ControlPlaneDataDirectory dataDirectory, TimeProvider time)
    {
        _options = options.Value;
        _time = time;
        _caDirectory = Path.Combine(dataDirectory.Path, "ca");
        _userSupplied = !string.IsNullOrEmpty(_options.Ca.CertificatePath);
        if (_userSupplied)
        {
            _state = LoadUserSupplied(_options.Ca);
            SecureFile.EnsureDirectory(_caDirectory);
            SecureFile.WritePublicText(Path.Combine(_caDirectory, "..", "trust-bundle.pem"), _state.Bundle.Pem);
        }
        else
        {
            _state = LoadOrCreateGenerated();
        }
    }

    /// <summary>Raised after the trust bundle or the active signer changes.</summary>
    public event Action<TrustBundle>? BundleChanged;

    public string TrustDomain => _options.TrustDomain;

    public TrustBundle Bundle => _state.Bundle;

    public Signer ActiveSigner => _state.Active;

    /// <summary>Gets whether the CA comes from files the user supplied (<c>ControlPlane:Ca</c>) rather than generated roots.</summary>
    public bool IsUserSupplied => _userSupplied;

    /// <summary>Gets what this CA trusts and issues under now.</summary>
    public CaTrust Trust => TrustOf(_state);

    /// <summary>Gets the ids of the generated roots in the bundle, the active one marked.</summary>
    public IReadOnlyList<(string Id, X509Certificate2 Certificate, bool Active)> Roots
    {
        get
        {
            var state = _state;
            var list = new List<(string, X509Certificate2, bool)>();
            foreach (var signer in state.Signers)
            {
                list.Add((signer.Id, signer.Certificate, ReferenceEquals(signer, state.Active)));
            }

            return list;
        }
    }

    /// <summary>Issues a workload certificate for <paramref name="id"/> over <paramref name="publicKey"/>.</summary>
    public IssuedCertificate Issue(SpiffeId id, PublicKey publicKey) =>
        Issue(id, publicKey, _options.CertificateLifetime, dnsNames: null, ipAddresses: null);

    /// <summary>Issues a certificate; the extensions are always the CA's own, never the requester's.</summary>
    /// <param name="id">The SPIFFE ID of the certificate.</param>
    /// <param name="publicKey">The requester's public key.</param>
    /// <param name="lifetime">How long it is valid (cut at the signer's own NotAfter).</param>
    /// <param name="dnsNames">DNS names to add, if any.</param>
    /// <param name="ipAddresses">IP addresses to add, if any.</param>
    /// <param name="chainToEveryRoot">
    /// During a rotation overlap, also chain to the other root of the bundle (see <see cref="CrossCertificate"/>), so that a
    /// client that trusts either root alone accepts it. For the control service's own certificate, not for workloads'.
    /// </param>
    public IssuedCertificate Issue(
        SpiffeId id,
        PublicKey publicKey,
        TimeSpan lifetime,
        IEnumerable<string>? dnsNames,
        IEnumerable<IPAddress>? ipAddresses,
        bool chainToEveryRoot = false)
    {
        ArgumentNullException.ThrowIfNull(id);
        ArgumentNullException.ThrowIfNull(publicKey);
        var state = _state;
        var signer = state.Active;
        var now = _time.GetUtcNow();

        // A small backdate tolerates clock skew between hosts: 30 s, or a tenth of short lifetimes so that a 5-second
        // test certificate is not mostly in the past.
        var backdate = TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(30).Ticks, lifetime.Ticks / 10));
        var notBefore = Max(now - backdate, signer.Certificate.NotBefore.ToUniversalTime());
        var notAfter = Min(now + lifetime, signer.Certificate.NotAfter.ToUniversalTime());

        var subjectBuilder = new X500DistinguishedNameBuilder();
        subjectBuilder.AddOrganizationName("MeshKit");
        subjectBuilder.AddOrganizationalUnitName(id.Namespace);
        subjectBuilder.AddCommonName(id.Service);
        var subject = subjectBuilder.Build();
        var request = new CertificateRequest(subject, publicKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], critical: false));
        request.CertificateExtensions.Add(SubjectAlternativeNames.Create(id.Value, dnsNames, ipAddresses));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(publicKey, critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(signer.Certificate, includeKeyIdentifier: true, includeIssuerAndSerial: false));

        // Crypto key objects are not documented as thread-safe: each signature uses a copy of the key no other thread uses
        // meanwhile (Signing/SigningKeys). The certificate is encoded without being loaded (Signing/CertificateEncoder).
        var serial = NewSerialNumber();
        X509Certificate2? loaded = null;
        var der = CertificateEncoder.CanEncode(publicKey)
            ? SigningKeys.With(signer.Key, (request, signer, notBefore, notAfter, serial), static (key, s) =>
                CertificateEncoder.Encode(s.request, s.signer.Certificate.SubjectName, CreateGenerator(key), s.notBefore, s.notAfter, s.serial))
            : null;
        var chain = new StringBuilder(2048);
        if (der is null)
        {
            loaded = SigningKeys.With(signer.Key, (request, signer, notBefore, notAfter, serial), static (key, s) =>
                s.request.Create(s.signer.Certificate.SubjectName, CreateGenerator(key), s.notBefore, s.notAfter, s.serial));
            chain.Append(loaded.ExportCertificatePem()).Append('\n');
        }
        else
        {
            chain.Append(PemEncoding.Write("CERTIFICATE", der)).Append('\n');
        }

        if (!state.Bundle.Contains(signer.Certificate))
        {
            foreach (var intermediate in signer.Chain)
            {
                chain.Append(intermediate.ExportCertificatePem()).Append('\n');
            }
        }
        else if (chainToEveryRoot && CrossCertificate(state, notBefore, notAfter) is { } cross)
        {
            using (cross)
            {
                chain.Append(cross.ExportCertificatePem()).Append('\n');
            }
        }

        return der is null
            ? new IssuedCertificate(loaded!, chain.ToString(), state.Bundle)
            : new IssuedCertificate(der, CertificateEncoder.SerialNumberText(serial), CertificateEncoder.Encoded(notBefore), CertificateEncoder.Encoded(notAfter), signer.Certificate.Subject, chain.ToString(), state.Bundle);
    }

    /// <summary>
    /// During a rotation overlap (a generated root issues and the bundle holds another root), the issuing root's subject and
    /// key certified by that other root: a leaf from the issuing root then also chains to the other one, for clients that
    /// trust only it (a trust-bundle file handed out before the rotation, or one holding only the new root). It lives no
    /// longer than the leaf it travels with, and none is made once the other root has left the bundle, so a removed root
    /// stops vouching for anything the control service presents. With several other roots, the one in the bundle longest.
    /// </summary>
    private X509Certificate2? CrossCertificate(State state, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        var active = state.Active;
        var other = state.Signers.FirstOrDefault(s => !ReferenceEquals(s, active));
        if (_userSupplied || other is null)
        {
            return null;
        }

        var request = new CertificateRequest(active.Certificate.SubjectName, active.Certificate.PublicKey, HashAlgorithmName.SHA256);
        foreach (var extension in active.Certificate.Extensions)
        {
            // The root's own constraints, usages, key identifier and trust-domain SAN; the issuer's key identifier is new.
            if (extension is not X509AuthorityKeyIdentifierExtension)
            {
                request.CertificateExtensions.Add(extension);
            }
        }

        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(other.Certificate, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        notBefore = Max(notBefore, other.Certificate.NotBefore.ToUniversalTime());
        notAfter = Min(notAfter, other.Certificate.NotAfter.ToUniversalTime());
        return SigningKeys.With(other.Key, (request, other, notBefore, notAfter), static (key, s) =>
            s.request.Create(s.other.Certificate.SubjectName, CreateGenerator(key), s.notBefore, s.notAfter, NewSerialNumber()));
    }

    /// <summary>Generates a new root and adds it to the trust bundle without issuing from it (CA rotation, step 1).</summary>
    public string AddRoot()
    {
        ThrowIfUserSupplied();
        lock (_gate)
        {
            var signer = GenerateRoot(NextRootId(_state));
            Persist(signer);
            var next = _state with { Signers = [.. _state.Signers, signer] };
            Commit(next);
            return signer.Id;
        }
    }

    /// <summary>Switches issuance to a root already in the bundle (CA rotation, step 2).</summary>
    /// <param name="id">The root's id.</param>
    /// <param name="check">Says why the change must not be made (other replicas' trust), or <see langword="null"/> to go on.</param>
    /// <exception cref="CaTrustConflictException"><paramref name="check"/> refused it.</exception>
    public void Activate(string id, Func<CaTrust, string?>? check = null)
    {
        ThrowIfUserSupplied();
        lock (_gate)
        {
            var signer = _state.Signers.FirstOrDefault(s => s.Id == id)
                ?? throw new KeyNotFoundException($"No root '{id}' is in the trust bundle.");
            Commit(Checked(Generated(_state with { Active = signer, IssuingRoot = signer.Certificate }), check));
        }
    }

    /// <summary>Removes a root from the bundle (CA rotation, step 3). The active root cannot be removed.</summary>
    /// <param name="id">The root's id.</param>
    /// <param name="check">Says why the change must not be made (other replicas' trust), or <see langword="null"/> to go on.</param>
    /// <exception cref="CaTrustConflictException"><paramref name="check"/> refused it.</exception>
    public void RemoveRoot(string id, Func<CaTrust, string?>? check = null)
    {
        ThrowIfUserSupplied();
        lock (_gate)
        {
            var signer = _state.Signers.FirstOrDefault(s => s.Id == id)
                ?? throw new KeyNotFoundException($"No root '{id}' is in the trust bundle.");
            if (ReferenceEquals(signer, _state.Active))
            {
                throw new InvalidOperationException($"Root '{id}' is the one issuing certificates; activate another root before removing it.");
            }

            Commit(Checked(Generated(_state with { Signers = [.. _state.Signers.Where(s => !ReferenceEquals(s, signer))] }), check));
        }
    }

    /// <summary>
    /// Reads the user-supplied CA's files again (<c>ControlPlane:Ca</c>: certificate, key and trust bundle) and, when they
    /// are valid, chain together and pass <paramref name="check"/>, issues with them from now on and publishes their bundle.
    /// This is how a user-supplied CA is rotated, one replica at a time: roots are added to (and later removed from) the
    /// bundle file, and the certificate and key are replaced with an intermediate under the new root. On any refusal
    /// nothing changes.
    /// </summary>
    /// <param name="check">Says why the change must not be made (other replicas' trust), or <see langword="null"/> to go on.</param>
    /// <returns>The trust now in effect.</returns>
    /// <exception cref="InvalidOperationException">The CA is generated, not user-supplied.</exception>
    /// <exception cref="InvalidDataException">The files are not a valid CA; the message names the settings.</exception>
    /// <exception cref="CaTrustConflictException"><paramref name="check"/> refused it.</exception>
    public CaTrust Reload(Func<CaTrust, string?>? check = null)
    {
        if (!_userSupplied)
        {
            throw new InvalidOperationException("The CA is generated by the control service (no ControlPlane:Ca files); rotate it with the /v1/ca/roots steps, not by reloading.");
        }

        lock (_gate)
        {
            var next = Checked(LoadUserSupplied(_options.Ca), check);
            SecureFile.WritePublicText(Path.Combine(_caDirectory, "..", "trust-bundle.pem"), next.Bundle.Pem);
            _state = next;
        }

        BundleChanged?.Invoke(_state.Bundle);
        return TrustOf(_state);
    }

    public void Dispose()
    {
        foreach (var signer in _state.Signers)
        {
            signer.Key.Dispose();
        }
    }

    private static CaTrust TrustOf(State state) => new(state.Bundle, state.Active.Certificate, state.IssuingRoot);

    /// <summary>A generated CA's state with its bundle made of its roots.</summary>
    private static State Generated(State state) => state with { Bundle = TrustBundle.Create(state.Signers.Select(s => s.Certificate)) };

    private static State Checked(State next, Func<CaTrust, string?>? check)
    {
        if (check?.Invoke(TrustOf(next)) is { } refusal)
        {
            throw new CaTrustConflictException(refusal);
        }

        return next;
    }

    private void Commit(State next)
    {
        next = next with { Bundle = TrustBundle.Create(next.Signers.Select(s => s.Certificate)) };
        var file = new StateFile(next.Active.Id, [.. next.Signers.Select(s => s.Id)]);
        SecureFile.WriteAllText(Path.Combine(_caDirectory, StateFileName), JsonSerializer.Serialize(file));
        SecureFile.WritePublicText(Path.Combine(_caDirectory, "..", "trust-bundle.pem"), next.Bundle.Pem);
        _state = next;
        BundleChanged?.Invoke(next.Bundle);
    }

    private void ThrowIfUserSupplied()
    {
        if (_userSupplied)
        {
            throw new InvalidOperationException("The CA is supplied through ControlPlane:Ca; rotate it by replacing those files and restarting, not through the API.");
        }
    }

    private State LoadOrCreateGenerated()
    {
        SecureFile.EnsureDirectory(_caDirectory);
        var statePath = Path.Combine(_caDirectory, StateFileName);
        if (!File.Exists(statePath))
        {
            var root = GenerateRoot("root-1");
            Persist(root);
            var created = new State([root], root, TrustBundle.Create([root.Certificate]), root.Certificate);
            SecureFile.WriteAllText(statePath, JsonSerializer.Serialize(new StateFile(root.Id, [root.Id])));
            SecureFile.WritePublicText(Path.Combine(_caDirectory, "..", "trust-bundle.pem"), created.Bundle.Pem);
            return created;
        }

        StateFile file;
        try
        {
            file = JsonSerializer.Deserialize<StateFile>(File.ReadAllText(statePath))
                ?? throw new InvalidDataException("it is empty");
        }
        catch (Exception ex) when (ex is JsonException or InvalidDataException)
        {
            throw new InvalidDataException($"The CA state file '{statePath}' is not valid: {ex.Message}", ex);
        }

        var signers = new List<Signer>();
        foreach (var id in file.Roots)
        {
            if (!IsSafeId(id))
            {
                throw new InvalidDataException($"The CA state file '{statePath}' names root '{id}', which is not a plain file name.");
            }

            var certificate = X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(_caDirectory, id + ".crt.pem")));
            var key = ECDsa.Create();
            key.ImportFromPem(File.ReadAllText(Path.Combine(_caDirectory, id + ".key.pem")));
            signers.Add(new Signer(id, certificate, key, [certificate]));
        }

        var active = signers.FirstOrDefault(s => s.Id == file.Active)
            ?? throw new InvalidDataException($"The CA state file '{statePath}' names active root '{file.Active}', which is not among its roots.");
        var state = new State(signers, active, TrustBundle.Create(signers.Select(s => s.Certificate)), active.Certificate);
        SecureFile.WritePublicText(Path.Combine(_caDirectory, "..", "trust-bundle.pem"), state.Bundle.Pem);
        return state;
    }

    private State LoadUserSupplied(CertificateAuthorityOptions ca)
    {
        try
        {
            return LoadUserSuppliedCore(ca);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException or FormatException)
        {
            // Whatever the files hold (or wherever a path points), the answer is an error that names the settings.
            throw new InvalidDataException(
                $"The CA in ControlPlane:Ca could not be loaded (ControlPlane:Ca:CertificatePath '{ca.CertificatePath}', ControlPlane:Ca:KeyPath '{ca.KeyPath}'"
                + (ca.TrustBundlePath is null ? string.Empty : $", ControlPlane:Ca:TrustBundlePath '{ca.TrustBundlePath}'")
                + $"): {ex.Message} They must be PEM files: a CA certificate, its private key, and for an intermediate the roots it chains to.",
                ex);
        }
    }

    private State LoadUserSuppliedCore(CertificateAuthorityOptions ca)
    {
        var certificates = new X509Certificate2Collection();
        certificates.ImportFromPemFile(ca.CertificatePath!);
        if (certificates.Count == 0)
        {
            throw new InvalidDataException($"ControlPlane:Ca:CertificatePath '{ca.CertificatePath}' holds no PEM certificate.");
        }

        var certificate = certificates[0];
        var keyPem = File.ReadAllText(ca.KeyPath!);
        AsymmetricAlgorithm key = certificate.GetKeyAlgorithm() == "1.2.840.113549.1.1.1" ? RSA.Create() : ECDsa.Create();
        key.ImportFromPem(keyPem);
        using (var withKey = key is RSA rsa ? certificate.CopyWithPrivateKey(rsa) : certificate.CopyWithPrivateKey((ECDsa)key))
        {
            // CopyWithPrivateKey throws when the key does not belong to the certificate.
        }

        if (certificate.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault() is not { CertificateAuthority: true })
        {
            throw new InvalidDataException($"ControlPlane:Ca:CertificatePath '{ca.CertificatePath}' is not a CA certificate (basicConstraints CA:TRUE is missing).");
        }

        var selfSigned = certificate.SubjectName.RawData.AsSpan().SequenceEqual(certificate.IssuerName.RawData);
        TrustBundle bundle;
        if (selfSigned)
        {
            bundle = TrustBundle.Create([certificate]);
        }
        else if (string.IsNullOrEmpty(ca.TrustBundlePath))
        {
            throw new InvalidDataException($"ControlPlane:Ca:CertificatePath '{ca.CertificatePath}' is an intermediate CA; set ControlPlane:Ca:TrustBundlePath to the roots it chains to.");
        }
        else
        {
            bundle = TrustBundle.FromPem(File.ReadAllText(ca.TrustBundlePath));
        }

        var chain = new List<X509Certificate2>();
        foreach (var c in certificates)
        {
            if (!bundle.Contains(c))
            {
                chain.Add(c);
            }
        }

        var signer = new Signer("user-supplied", certificate, key, chain);
        return new State([signer], signer, bundle, IssuingRootOf(certificate, chain, bundle, ca));
    }

    /// <summary>
    /// The root of <paramref name="bundle"/> that <paramref name="certificate"/> chains to through <paramref name="chain"/>,
    /// checked now: signatures, validity and CA constraints. An intermediate that chains to none of the published roots
    /// would issue certificates no workload accepts, so it is refused at start (and on reload) rather than at the first call.
    /// </summary>
    private X509Certificate2 IssuingRootOf(X509Certificate2 certificate, IReadOnlyList<X509Certificate2> chain, TrustBundle bundle, CertificateAuthorityOptions ca)
    {
        using var builder = new X509Chain { ChainPolicy = bundle.CreateChainPolicy() };
        foreach (var intermediate in chain)
        {
            builder.ChainPolicy.ExtraStore.Add(intermediate);
        }

        builder.ChainPolicy.VerificationTime = _time.GetUtcNow().UtcDateTime;
        if (!builder.Build(certificate))
        {
            var why = string.Join("; ", builder.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct());
            var roots = ca.TrustBundlePath is null ? "itself (it is self-signed)" : $"a root in ControlPlane:Ca:TrustBundlePath '{ca.TrustBundlePath}'";
            throw new InvalidDataException($"ControlPlane:Ca:CertificatePath '{ca.CertificatePath}' ({certificate.Subject}) does not chain to {roots}: {(why.Length > 0 ? why : "no valid chain")}.");
        }

        var top = builder.ChainElements[^1].Certificate;
        return bundle.Roots.First(r => r.RawData.AsSpan().SequenceEqual(top.RawData));
    }

    private Signer GenerateRoot(string id)
    {
        var key = CertificateAuthorityRoots.CreateKey();
        var subject = new X500DistinguishedNameBuilder();
        subject.AddOrganizationName("MeshKit");
        subject.AddCommonName($"MeshKit Root CA {_options.TrustDomain} {id}");
        var certificate = CertificateAuthorityRoots.CreateRoot(key, _options.TrustDomain, subject.Build(), _time.GetUtcNow(), RootLifetime);
        return new Signer(id, certificate, key, [certificate]);
    }

    private void Persist(Signer signer)
    {
        // The key first, mode 0600; the certificate is public.
        SecureFile.WriteAllText(Path.Combine(_caDirectory, signer.Id + ".key.pem"), ((ECDsa)signer.Key).ExportPkcs8PrivateKeyPem());
        SecureFile.WritePublicText(Path.Combine(_caDirectory, signer.Id + ".crt.pem"), signer.Certificate.ExportCertificatePem());
    }

    private static string NextRootId(State state)
    {
        var next = 1;
        foreach (var signer in state.Signers)
        {
            if (signer.Id.StartsWith("root-", StringComparison.Ordinal) && int.TryParse(signer.Id.AsSpan(5), out var n))
            {
                next = Math.Max(next, n + 1);
            }
        }

        return $"root-{next}";
    }

    private static bool IsSafeId(string id) =>
        id.Length is > 0 and <= 64 && id.All(c => char.IsAsciiLetterOrDigit(c) || c == '-');

    private static X509SignatureGenerator CreateGenerator(AsymmetricAlgorithm key) => key switch
    {
        ECDsa ecdsa => X509SignatureGenerator.CreateForECDsa(ecdsa),
        RSA rsa => X509SignatureGenerator.CreateForRSA(rsa, RSASignaturePadding.Pkcs1),
        _ => throw new NotSupportedException($"CA keys of type {key.GetType().Name} are not supported; use ECDSA or RSA."),
    };

    private static byte[] NewSerialNumber()
    {
        // 16 random bytes, positive as a DER INTEGER (RFC 5280 asks for at most 20 octets, non-negative).
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        serial[0] |= 0x01;
        return serial;
    }

    private static DateTimeOffset Max(DateTimeOffset a, DateTime b) => a > b ? a : new DateTimeOffset(b, TimeSpan.Zero);

    private static DateTimeOffset Min(DateTimeOffset a, DateTime b) => a < b ? a : new DateTimeOffset(b, TimeSpan.Zero);

    private sealed record State(IReadOnlyList<Signer> Signers, Signer Active, TrustBundle Bundle, X509Certificate2 IssuingRoot);

    private sealed record StateFile(string Active, string[] Roots);
}
