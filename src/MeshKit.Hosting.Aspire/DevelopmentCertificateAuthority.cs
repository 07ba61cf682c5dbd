using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MeshKit.Identity;

namespace MeshKit.Hosting.Aspire;

/// <summary>
/// The mesh's root CA for local development, generated once by the AppHost and kept under the state directory, so that
/// its certificate (the trust bundle workloads need) exists before any process starts. The control service receives it
/// as a user-supplied CA. It is made by <see cref="CertificateAuthorityRoots"/>, like the control service's own roots:
/// ECDSA P-256, CA:TRUE, keyCertSign and cRLSign, and the trust domain's SPIFFE ID as its URI SAN.
/// </summary>
internal sealed class DevelopmentCertificateAuthority
{
    public const string CertificateFileName = "root.crt.pem";
    public const string KeyFileName = "root.key.pem";

    private static readonly TimeSpan Lifetime = TimeSpan.FromDays(5 * 365);
    private static readonly TimeSpan RenewBefore = TimeSpan.FromDays(30);

    private DevelopmentCertificateAuthority(string directory, X509Certificate2 certificate)
    {
        Directory = directory;
        CertificatePath = Path.Combine(directory, CertificateFileName);
        KeyPath = Path.Combine(directory, KeyFileName);
        Certificate = certificate;
    }

    /// <summary>Gets the folder holding the root's certificate and key.</summary>
    public string Directory { get; }

    /// <summary>Gets the PEM file of the root certificate: the trust bundle of the mesh.</summary>
    public string CertificatePath { get; }

    /// <summary>Gets the PEM file of the root's private key (owner-only).</summary>
    public string KeyPath { get; }

    /// <summary>Gets the root certificate (public part).</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>
    /// Reads the root's private key from <see cref="KeyPath"/>, for the AppHost to sign replicas' intermediates with; the
    /// caller disposes it at once. The key never leaves the AppHost's process.
    /// </summary>
    public ECDsa LoadKey()
    {
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(File.ReadAllText(KeyPath));
            return key;
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Loads the root kept in <paramref name="directory"/>, or creates one when there is none, it cannot be read, it
    /// expires within 30 days, or it is not the root of <paramref name="trustDomain"/> (its URI SAN is not
    /// <c>spiffe://&lt;trust-domain&gt;</c>: the trust domain changed, or the root predates the shared generator).
    /// Creation is atomic (a complete folder is renamed into place), so two AppHosts starting at once end up sharing one root.
    /// </summary>
    public static DevelopmentCertificateAuthority LoadOrCreate(string directory, string trustDomain, DateTimeOffset now)
    {
        directory = Path.GetFullPath(directory);
        if (TryLoad(directory, trustDomain, now) is { } existing)
        {
            return existing;
        }

        var parent = Path.GetDirectoryName(directory)!;
        CreateOwnerOnlyDirectory(parent);
        var staging = Path.Combine(parent, $".{Path.GetFileName(directory)}.{Guid.NewGuid():N}.tmp");
        CreateOwnerOnlyDirectory(staging);
        try
        {
            Generate(staging, trustDomain, now);
            if (System.IO.Directory.Exists(directory))
            {
                // Unreadable, expiring or of another trust domain: set it aside rather than delete a key someone may want
                // to inspect. A second replacement within the same second gets a numbered name.
                var aside = $"{directory}.replaced-{now:yyyyMMddHHmmss}";
                for (var n = 2; System.IO.Directory.Exists(aside); n++)
                {
                    aside = $"{directory}.replaced-{now:yyyyMMddHHmmss}-{n}";
                }

                System.IO.Directory.Move(directory, aside);
            }

            System.IO.Directory.Move(staging, directory);
        }
        catch (IOException) when (TryLoad(directory, trustDomain, now) is not null)
        {
            // Another AppHost created it first; use theirs.
        }
        finally
        {
            if (System.IO.Directory.Exists(staging))
            {
                System.IO.Directory.Delete(staging, recursive: true);
            }
        }

        return TryLoad(directory, trustDomain, now)
            ?? throw new InvalidOperationException($"The mesh's development CA in '{directory}' could not be created or read; delete the folder and start again.");
    }

    private static DevelopmentCertificateAuthority? TryLoad(string directory, string trustDomain, DateTimeOffset now) =>
        LoadCertificateAuthority(Path.Combine(directory, CertificateFileName), Path.Combine(directory, KeyFileName), trustDomain, now, RenewBefore) is { } certificate
            ? new DevelopmentCertificateAuthority(directory, certificate)
            : null;

    /// <summary>
    /// Reads a CA certificate and its key from PEM files, or <see langword="null"/> when either is missing or unreadable,
    /// the key is not the certificate's, the certificate expires within <paramref name="renewBefore"/>, is not a CA, or
    /// does not carry <c>spiffe://&lt;trust-domain&gt;</c> as its only URI SAN: the caller then makes a new one.
    /// </summary>
    internal static X509Certificate2? LoadCertificateAuthority(string certificatePath, string keyPath, string trustDomain, DateTimeOffset now, TimeSpan renewBefore)
    {
        if (!File.Exists(certificatePath) || !File.Exists(keyPath))
        {
            return null;
        }

        try
        {
            var certificate = X509Certificate2.CreateFromPem(File.ReadAllText(certificatePath));
            using var key = ECDsa.Create();
            key.ImportFromPem(File.ReadAllText(keyPath));

            // CopyWithPrivateKey throws when the key does not belong to the certificate.
            using (certificate.CopyWithPrivateKey(key))
            {
            }

            return certificate.NotAfter.ToUniversalTime() - now.UtcDateTime < renewBefore
                || certificate.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault() is not { CertificateAuthority: true }
                || SubjectAlternativeNames.GetUris(certificate) is not [var uri] || uri != SpiffeId.Prefix + trustDomain
                ? null
                : certificate;
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException or IOException)
        {
            return null;
        }
    }

    private static void Generate(string directory, string trustDomain, DateTimeOffset now)
    {
        using var key = CertificateAuthorityRoots.CreateKey();
        var subject = new X500DistinguishedNameBuilder();
        subject.AddOrganizationName("MeshKit");
        subject.AddOrganizationalUnitName("Local development");
        subject.AddCommonName($"MeshKit development root CA ({Environment.MachineName})");
        using var root = CertificateAuthorityRoots.CreateRoot(key, trustDomain, subject.Build(), now, Lifetime);

        WriteOwnerOnly(Path.Combine(directory, KeyFileName), key.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(Path.Combine(directory, CertificateFileName), root.ExportCertificatePem() + "\n");
    }

    /// <summary>Creates a folder readable by its owner only (mode 0700 outside Windows), or leaves an existing one as it is.</summary>
    internal static void CreateOwnerOnlyDirectory(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            System.IO.Directory.CreateDirectory(path);
        }
        else
        {
            System.IO.Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    /// <summary>Writes a new file readable by its owner only (mode 0600 outside Windows); fails when it exists.</summary>
    internal static void WriteOwnerOnly(string path, string contents)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using var stream = new FileStream(path, options);
        using var writer = new StreamWriter(stream);
        writer.Write(contents);
    }
}
