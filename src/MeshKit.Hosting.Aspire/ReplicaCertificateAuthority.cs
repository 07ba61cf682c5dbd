using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MeshKit.Identity;

namespace MeshKit.Hosting.Aspire;

/// <summary>
/// One control-service replica's CA when the AppHost runs several: an intermediate (CA:TRUE, pathlen 0) signed by the
/// development root with <see cref="CertificateAuthorityRoots.CreateIntermediate"/>, and a copy of the root certificate as
/// the replica's trust bundle. The AppHost signs it with the root's key, which stays in its state folder: a replica gets
/// its own intermediate's key and the root's certificate, never the root's key, so a leaked replica folder can be cut off
/// by replacing its intermediate without replacing the mesh's trust.
/// </summary>
internal sealed class ReplicaCertificateAuthority
{
    public const string CertificateFileName = "intermediate.crt.pem";
    public const string KeyFileName = "intermediate.key.pem";
    public const string TrustBundleFileName = "root.crt.pem";

    private static readonly TimeSpan Lifetime = TimeSpan.FromDays(90);
    private static readonly TimeSpan RenewBefore = TimeSpan.FromDays(30);

    private ReplicaCertificateAuthority(string directory, X509Certificate2 certificate)
    {
        CertificatePath = Path.Combine(directory, CertificateFileName);
        KeyPath = Path.Combine(directory, KeyFileName);
        TrustBundlePath = Path.Combine(directory, TrustBundleFileName);
        Certificate = certificate;
    }

    /// <summary>Gets the PEM file of the replica's intermediate certificate.</summary>
    public string CertificatePath { get; }

    /// <summary>Gets the PEM file of the intermediate's private key (owner-only).</summary>
    public string KeyPath { get; }

    /// <summary>Gets the PEM file of the root the intermediate chains to: a copy of the development root's certificate.</summary>
    public string TrustBundlePath { get; }

    /// <summary>Gets the intermediate certificate (public part).</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>
    /// Loads the intermediate kept in <paramref name="directory"/>, or makes a new one when there is none, it cannot be
    /// read, its key does not match, it does not chain to <paramref name="root"/> (the root was replaced or the trust
    /// domain changed), or it expires within 30 days. A new one replaces the folder as a whole (made aside, then moved in).
    /// The root's certificate is copied beside it each time, so the replica's trust bundle is always the current root.
    /// </summary>
    /// <param name="directory">The replica's CA folder (owner-only).</param>
    /// <param name="root">The development root.</param>
    /// <param name="trustDomain">The mesh's trust domain.</param>
    /// <param name="replicaName">The replica's resource name, for the intermediate's subject.</param>
    /// <param name="now">The current time.</param>
    public static ReplicaCertificateAuthority LoadOrCreate(string directory, DevelopmentCertificateAuthority root, string trustDomain, string replicaName, DateTimeOffset now)
    {
        directory = Path.GetFullPath(directory);
        var rootPem = root.Certificate.ExportCertificatePem() + "\n";
        if (TryLoad(directory, root.Certificate, trustDomain, now) is not { } loaded)
        {
            var parent = Path.GetDirectoryName(directory)!;
            DevelopmentCertificateAuthority.CreateOwnerOnlyDirectory(parent);
            var staging = Path.Combine(parent, $".{Path.GetFileName(directory)}.{Guid.NewGuid():N}.tmp");
            DevelopmentCertificateAuthority.CreateOwnerOnlyDirectory(staging);
            try
            {
                Generate(staging, root, trustDomain, replicaName, now);
                File.WriteAllText(Path.Combine(staging, TrustBundleFileName), rootPem);
                if (Directory.Exists(directory))
                {
                    // Unlike the root, an intermediate is disposable: the root can always make another.
                    Directory.Delete(directory, recursive: true);
                }

                Directory.Move(staging, directory);
            }
            catch (IOException) when (TryLoad(directory, root.Certificate, trustDomain, now) is not null)
            {
                // Another AppHost made it first; use theirs.
            }
            finally
            {
                if (Directory.Exists(staging))
                {
                    Directory.Delete(staging, recursive: true);
                }
            }

            loaded = TryLoad(directory, root.Certificate, trustDomain, now)
                ?? throw new InvalidOperationException($"The intermediate CA of control-service replica '{replicaName}' in '{directory}' could not be created or read; delete the folder and start again.");
        }

        var bundle = Path.Combine(directory, TrustBundleFileName);
        if (!File.Exists(bundle) || File.ReadAllText(bundle) != rootPem)
        {
            File.WriteAllText(bundle, rootPem);
        }

        return loaded;
    }

    private static ReplicaCertificateAuthority? TryLoad(string directory, X509Certificate2 root, string trustDomain, DateTimeOffset now) =>
        DevelopmentCertificateAuthority.LoadCertificateAuthority(Path.Combine(directory, CertificateFileName), Path.Combine(directory, KeyFileName), trustDomain, now, RenewBefore) is { } certificate
        && IssuedBy(certificate, root, now)
            ? new ReplicaCertificateAuthority(directory, certificate)
            : null;

    /// <summary>Whether <paramref name="certificate"/> chains to <paramref name="root"/> (and only to it) at <paramref name="now"/>.</summary>
    internal static bool IssuedBy(X509Certificate2 certificate, X509Certificate2 root, DateTimeOffset now)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(root);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.DisableCertificateDownloads = true;
        chain.ChainPolicy.VerificationTime = now.UtcDateTime;
        return chain.Build(certificate)
            && chain.ChainElements.Count == 2
            && chain.ChainElements[1].Certificate.RawDataMemory.Span.SequenceEqual(root.RawDataMemory.Span);
    }

    private static void Generate(string directory, DevelopmentCertificateAuthority root, string trustDomain, string replicaName, DateTimeOffset now)
    {
        using var rootKey = root.LoadKey();
        using var key = CertificateAuthorityRoots.CreateKey();
        var subject = new X500DistinguishedNameBuilder();
        subject.AddOrganizationName("MeshKit");
        subject.AddOrganizationalUnitName("Local development");
        subject.AddCommonName($"MeshKit development intermediate CA ({replicaName})");
        using var intermediate = CertificateAuthorityRoots.CreateIntermediate(root.Certificate, rootKey, key, trustDomain, subject.Build(), now, Lifetime);

        DevelopmentCertificateAuthority.WriteOwnerOnly(Path.Combine(directory, KeyFileName), key.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(Path.Combine(directory, CertificateFileName), intermediate.ExportCertificatePem() + "\n");
    }
}
