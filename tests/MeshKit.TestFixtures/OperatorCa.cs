using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MeshKit.Identity;

namespace MeshKit.Testing;

/// <summary>
/// An operator's root CA kept outside every control service, and the per-replica intermediates it signs: what
/// docs/security.md ("One CA across replicas") asks of production, so that no replica holds the root's key. Each
/// intermediate is written to its own folder as the <c>ControlPlane:Ca</c> settings of one replica.
/// </summary>
public sealed class OperatorCa : IDisposable, IAsyncDisposable
{
    private readonly TempDirectory _directory = new("meshkit-operator-ca");
    private int _issued;

    /// <summary>Creates a root for <paramref name="trustDomain"/> (or takes an existing one: its certificate and key files).</summary>
    public OperatorCa(string trustDomain = ControlPlaneHost.TrustDomain, string? rootCertificatePath = null, string? rootKeyPath = null)
    {
        TrustDomain = trustDomain;
        if (rootCertificatePath is not null)
        {
            RootCertificatePath = rootCertificatePath;
            RootKeyPath = rootKeyPath ?? throw new ArgumentNullException(nameof(rootKeyPath));
            return;
        }

        using var key = CertificateAuthorityRoots.CreateKey();
        var subject = new X500DistinguishedNameBuilder();
        subject.AddOrganizationName("MeshKit tests");
        subject.AddCommonName($"Operator root {Guid.NewGuid():N}"[..30]);
        using var root = CertificateAuthorityRoots.CreateRoot(key, trustDomain, subject.Build(), DateTimeOffset.UtcNow, TimeSpan.FromDays(30));
        RootCertificatePath = Path.Combine(_directory.Path, "root.crt.pem");
        RootKeyPath = Path.Combine(_directory.Path, "root.key.pem");
        File.WriteAllText(RootCertificatePath, root.ExportCertificatePem());
        File.WriteAllText(RootKeyPath, key.ExportPkcs8PrivateKeyPem(), System.Text.Encoding.ASCII);
    }

    /// <summary>Gets the trust domain of the root.</summary>
    public string TrustDomain { get; }

    /// <summary>Gets the root certificate's PEM file: the trust bundle replicas publish.</summary>
    public string RootCertificatePath { get; }

    /// <summary>Gets the root key's PEM file. No replica is ever given it.</summary>
    public string RootKeyPath { get; }

    /// <summary>Gets the root certificate.</summary>
    public X509Certificate2 Root => X509Certificate2.CreateFromPem(File.ReadAllText(RootCertificatePath));

    /// <summary>
    /// Signs a new intermediate for one replica and sets its <c>ControlPlane:Ca</c> settings: the intermediate's certificate
    /// and key, and <paramref name="trustBundlePath"/> (default: this root alone) as its trust bundle.
    /// </summary>
    public Dictionary<string, string?> IntermediateFor(Dictionary<string, string?> settings, string? trustBundlePath = null)
    {
        var files = WriteIntermediate();
        settings["ControlPlane:Ca:CertificatePath"] = files.CertificatePath;
        settings["ControlPlane:Ca:KeyPath"] = files.KeyPath;
        settings["ControlPlane:Ca:TrustBundlePath"] = trustBundlePath ?? RootCertificatePath;
        return settings;
    }

    /// <summary>Signs a new intermediate and writes it (certificate, key) to a folder of its own.</summary>
    public (string CertificatePath, string KeyPath, X509Certificate2 Certificate) WriteIntermediate()
    {
        var n = Interlocked.Increment(ref _issued);
        return WriteIntermediate(RootCertificatePath, RootKeyPath, TrustDomain, Path.Combine(_directory.Path, $"replica-{n}"), $"Replica intermediate {n}");
    }

    /// <summary>Signs an intermediate with the root in <paramref name="rootCertificatePath"/> and writes it to <paramref name="folder"/>.</summary>
    public static (string CertificatePath, string KeyPath, X509Certificate2 Certificate) WriteIntermediate(
        string rootCertificatePath, string rootKeyPath, string trustDomain, string folder, string name)
    {
        Directory.CreateDirectory(folder);
        using var rootKey = ECDsa.Create();
        rootKey.ImportFromPem(File.ReadAllText(rootKeyPath));
        using var root = X509Certificate2.CreateFromPem(File.ReadAllText(rootCertificatePath));
        using var key = CertificateAuthorityRoots.CreateKey();
        var subject = new X500DistinguishedNameBuilder();
        subject.AddOrganizationName("MeshKit tests");
        subject.AddCommonName(name);
        var intermediate = CertificateAuthorityRoots.CreateIntermediate(root, rootKey, key, trustDomain, subject.Build(), DateTimeOffset.UtcNow, TimeSpan.FromDays(7));
        var certificatePath = Path.Combine(folder, "intermediate.crt.pem");
        var keyPath = Path.Combine(folder, "intermediate.key.pem");
        File.WriteAllText(certificatePath, intermediate.ExportCertificatePem());
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        return (certificatePath, keyPath, intermediate);
    }

    public void Dispose() => _directory.Dispose();

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}
