using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.RegularExpressions;
using MeshKit.Identity;
using Spectre.Console;

namespace MeshKit.Cli.CertificateAuthority;

/// <summary><c>meshctl ca root --json</c> and <c>meshctl ca intermediate --json</c>: what was written, and (for an intermediate) the replica's settings.</summary>
/// <param name="Kind"><c>root</c> or <c>intermediate</c>.</param>
/// <param name="TrustDomain">The trust domain the certificate carries in its URI SAN.</param>
/// <param name="Subject">The certificate's subject.</param>
/// <param name="Issuer">The certificate's issuer (the root, for an intermediate).</param>
/// <param name="Sha256">The certificate's SHA-256 fingerprint.</param>
/// <param name="NotAfter">When it expires.</param>
/// <param name="CertificatePath">The certificate's PEM file.</param>
/// <param name="KeyPath">The private key's PEM file (owner-only).</param>
/// <param name="Settings">For an intermediate, the replica's <c>ControlPlane:Ca:*</c> settings.</param>
/// <param name="EnvironmentVariables">The same settings as environment variables.</param>
internal sealed record CaFilesReport(
    string Kind,
    string TrustDomain,
    string Subject,
    string Issuer,
    string Sha256,
    DateTimeOffset NotAfter,
    string CertificatePath,
    string KeyPath,
    IReadOnlyDictionary<string, string>? Settings,
    IReadOnlyDictionary<string, string>? EnvironmentVariables);

/// <summary>
/// <c>meshctl ca root</c> and <c>meshctl ca intermediate</c>: an operator's root CA and the per-replica intermediates it
/// signs, made offline (no control service), so that the root's key stays with the operator and no replica ever holds it.
/// Both use <see cref="CertificateAuthorityRoots"/>, the profile the control service checks at start and on reload.
/// </summary>
internal static partial class CaFileCommands
{
    private const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerOnlyDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    public static Command CreateRoot(GlobalOptions options, CliEnvironment environment)
    {
        var output = new Option<DirectoryInfo>("--out") { Description = "The folder to write root.crt.pem and root.key.pem to (created owner-only when missing).", HelpName = "dir", Required = true };
        var lifetime = Durations.Option("--lifetime", TimeSpan.FromDays(3650), "How long the root stays valid.");
        var force = new Option<bool>("--force") { Description = "Replace root.crt.pem and root.key.pem when they exist (by default meshctl never overwrites a key)." };
        var command = new Command("root", "Create the mesh's root CA offline (no control service): root.crt.pem and root.key.pem (owner-only). Keep the key off the replicas; sign an intermediate for each replica with 'meshctl ca intermediate'. The trust domain comes from --trust-domain (or $MESHCTL_TRUST_DOMAIN).")
        {
            output,
            lifetime,
            force,
        };
        command.SetBody(options, environment, (context, _) =>
        {
            var trustDomain = context.Value(options.TrustDomain) ?? environment.GetVariable("MESHCTL_TRUST_DOMAIN")
                ?? throw new MeshctlException(ExitCodes.Usage, "--trust-domain is required: the trust domain the root signs for (for example mesh.example.com).");
            CheckTrustDomain(trustDomain);
            var validity = Positive(context.Value(lifetime), "--lifetime");
            var directory = context.Value(output)!.FullName;
            var certificatePath = Path.Combine(directory, "root.crt.pem");
            var keyPath = Path.Combine(directory, "root.key.pem");
            var replace = context.Value(force);
            CheckNotThere(replace, certificatePath, keyPath);

            using var key = CertificateAuthorityRoots.CreateKey();
            var subject = new X500DistinguishedNameBuilder();
            subject.AddOrganizationName("MeshKit");
            subject.AddOrganizationalUnitName("Root CA");
            subject.AddCommonName(trustDomain.Length <= 54 ? $"{trustDomain} {KeyId(key)}" : KeyId(key));
            using var root = CertificateAuthorityRoots.CreateRoot(key, trustDomain, subject.Build(), DateTimeOffset.UtcNow, validity);

            EnsureDirectory(directory);
            Write(keyPath, key.ExportPkcs8PrivateKeyPem(), secret: true, replace);
            Write(certificatePath, root.ExportCertificatePem(), secret: false, replace);

            var report = Report("root", trustDomain, root, certificatePath, keyPath, null);
            if (context.Json)
            {
                context.WriteJson(report);
                return Task.FromResult(ExitCodes.Ok);
            }

            var console = context.Console;
            console.WriteLine($"Wrote {certificatePath}");
            console.WriteLine($"      root CA {root.Subject}, spiffe://{trustDomain}, valid until {Day(report.NotAfter)}");
            console.WriteLine($"      SHA-256 {report.Sha256}");
            console.WriteLine($"Wrote {keyPath} (private key, owner-only)");
            console.WriteLine();
            console.WriteLine("Next:");
            console.WriteLine($"  1. Keep {Path.GetFileName(keyPath)} offline: no control-service replica is ever given it.");
            console.WriteLine("  2. Sign an intermediate for each replica, giving each its own name:");
            console.WriteLine($"       meshctl ca intermediate --root-cert {certificatePath} --root-key {keyPath} --name <replica> --out <dir>");
            console.WriteLine($"  3. Give every replica {Path.GetFileName(certificatePath)} as its trust bundle (ControlPlane:Ca:TrustBundlePath), and workloads too (Mesh:ControlPlane:TrustBundlePath).");
            return Task.FromResult(ExitCodes.Ok);
        });
        return command;
    }

    public static Command CreateIntermediate(GlobalOptions options, CliEnvironment environment)
    {
        var rootCertificate = new Option<FileInfo>("--root-cert") { Description = "The root's certificate (PEM), from 'meshctl ca root' or your own CA.", HelpName = "file", Required = true };
        var rootKey = new Option<FileInfo>("--root-key") { Description = "The root's private key: unencrypted PEM, ECDSA or RSA (PKCS#8, SEC1 or PKCS#1).", HelpName = "file", Required = true };
        var name = new Option<string>("--name") { Description = "The replica's name: the files are <name>.crt.pem and <name>.key.pem, and the intermediate's subject names it. Letters, digits, '.', '_' and '-' only.", HelpName = "replica", Required = true };
        var output = new Option<DirectoryInfo>("--out") { Description = "The folder to write the intermediate's files to (created owner-only when missing).", HelpName = "dir", Required = true };
        var lifetime = Durations.Option("--lifetime", TimeSpan.FromDays(30), "How long the intermediate stays valid (never past the root's expiry). Sign the next one, replace the files and run 'meshctl ca reload' before it ends.");
        var force = new Option<bool>("--force") { Description = "Replace the replica's files when they exist." };
        var command = new Command("intermediate", "Sign an intermediate CA for one control-service replica with the root, offline (no control service): <name>.crt.pem and <name>.key.pem (owner-only), and the replica's ControlPlane:Ca settings. The trust domain is the root's (its spiffe://<td> URI SAN) unless --trust-domain is given.")
        {
            rootCertificate,
            rootKey,
            name,
            output,
            lifetime,
            force,
        };
        command.SetBody(options, environment, (context, _) =>
        {
            var replica = context.Value(name)!;
            if (!ReplicaName().IsMatch(replica))
            {
                throw new MeshctlException(ExitCodes.Usage, $"--name '{replica}' is not a plain file name: use 1 to 54 letters, digits, '.', '_' or '-', starting with a letter or digit (for example control-1).");
            }

            var validity = Positive(context.Value(lifetime), "--lifetime");
            var rootPath = context.Value(rootCertificate)!.FullName;
            var rootKeyPath = context.Value(rootKey)!.FullName;
            using var root = LoadRoot(rootPath);
            var trustDomain = ResolveTrustDomain(context.Value(options.TrustDomain) ?? environment.GetVariable("MESHCTL_TRUST_DOMAIN"), root, rootPath);
            using var signingKey = LoadRootKey(rootKeyPath, root, rootPath);

            var directory = context.Value(output)!.FullName;
            var certificatePath = Path.Combine(directory, replica + ".crt.pem");
            var keyPath = Path.Combine(directory, replica + ".key.pem");
            var replace = context.Value(force);
            CheckNotThere(replace, certificatePath, keyPath);

            using var key = CertificateAuthorityRoots.CreateKey();
            var subject = new X500DistinguishedNameBuilder();
            subject.AddOrganizationName("MeshKit");
            subject.AddOrganizationalUnitName("Intermediate CA");
            subject.AddCommonName($"{replica} {KeyId(key)}");
            var now = DateTimeOffset.UtcNow;
            X509Certificate2 intermediate;
            try
            {
                intermediate = CertificateAuthorityRoots.CreateIntermediate(root, signingKey, key, trustDomain, subject.Build(), now, validity);
            }
            catch (ArgumentException ex) when (ex.ParamName is "root")
            {
                throw new MeshctlException(ExitCodes.Usage, $"--root-cert '{rootPath}' cannot sign: {Message(ex)}", ex);
            }
            catch (ArgumentException ex) when (ex.ParamName is "rootKey")
            {
                throw new MeshctlException(ExitCodes.Usage, $"--root-key '{rootKeyPath}' is not the private key of --root-cert '{rootPath}' ({root.Subject}).", ex);
            }

            using (intermediate)
            {
                EnsureDirectory(directory);
                Write(keyPath, key.ExportPkcs8PrivateKeyPem(), secret: true, replace);
                Write(certificatePath, intermediate.ExportCertificatePem(), secret: false, replace);

                var settings = new Dictionary<string, string>
                {
                    ["ControlPlane:Ca:CertificatePath"] = certificatePath,
                    ["ControlPlane:Ca:KeyPath"] = keyPath,
                    ["ControlPlane:Ca:TrustBundlePath"] = rootPath,
                };
                var variables = settings.ToDictionary(s => s.Key.Replace(":", "__", StringComparison.Ordinal), s => s.Value);
                var report = Report("intermediate", trustDomain, intermediate, certificatePath, keyPath, settings) with { EnvironmentVariables = variables };
                if (report.NotAfter < now + validity - TimeSpan.FromMinutes(1))
                {
                    context.Warn($"the root expires {Day(report.NotAfter)}: the intermediate is valid until then only, not for the {Durations.Format(validity)} of --lifetime.");
                }

                if (context.Json)
                {
                    context.WriteJson(report);
                    return Task.FromResult(ExitCodes.Ok);
                }

                var console = context.Console;
                console.WriteLine($"Wrote {certificatePath}");
                console.WriteLine($"      intermediate CA {intermediate.Subject} for replica '{replica}', spiffe://{trustDomain}, valid until {Day(report.NotAfter)}");
                console.WriteLine($"      signed by {root.Subject}");
                console.WriteLine($"Wrote {keyPath} (private key, owner-only)");
                console.WriteLine();
                console.WriteLine($"Settings of replica '{replica}' (paths as on this machine: give the replica these files, never the root's key):");
                foreach (var (setting, value) in settings)
                {
                    console.WriteLine($"  {setting,-32} {value}");
                }

                console.WriteLine("or as environment variables:");
                foreach (var (variable, value) in variables)
                {
                    console.WriteLine($"  {variable}={value}");
                }

                console.WriteLine();
                console.WriteLine("Next: a new replica starts with these settings. For a running one, replace its files and run 'meshctl ca reload'");
                console.WriteLine("(during a root rotation its trust bundle file holds both roots, the old and the new).");
                return Task.FromResult(ExitCodes.Ok);
            }
        });
        return command;
    }

    /// <summary>A replica's name becomes a file name: plain characters only, so it can never point elsewhere.</summary>
    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,53}$", RegexOptions.CultureInvariant)]
    private static partial Regex ReplicaName();

    private static CaFilesReport Report(string kind, string trustDomain, X509Certificate2 certificate, string certificatePath, string keyPath, IReadOnlyDictionary<string, string>? settings) => new(
        kind,
        trustDomain,
        certificate.Subject,
        certificate.Issuer,
        certificate.GetCertHashString(HashAlgorithmName.SHA256),
        new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero),
        certificatePath,
        keyPath,
        settings,
        null);

    private static void CheckTrustDomain(string trustDomain)
    {
        if (!SpiffeId.IsValidTrustDomain(trustDomain, out var why))
        {
            throw new MeshctlException(ExitCodes.Usage, $"--trust-domain '{trustDomain}' is not a valid trust domain: it {why}.");
        }
    }

    private static TimeSpan Positive(TimeSpan value, string option) =>
        value > TimeSpan.Zero ? value : throw new MeshctlException(ExitCodes.Usage, $"{option} must be longer than 0.");

    /// <summary>Refuses before anything is written, so that an existing key is never half-replaced.</summary>
    private static void CheckNotThere(bool replace, params string[] paths)
    {
        if (replace)
        {
            return;
        }

        var there = paths.Where(File.Exists).ToList();
        if (there.Count > 0)
        {
            throw new MeshctlException(ExitCodes.Usage, $"{string.Join(" and ", there.Select(p => $"'{p}'"))} already exist{(there.Count == 1 ? "s" : string.Empty)}: nothing was written. Give --force to replace {(there.Count == 1 ? "it" : "them")}, or another --out folder.");
        }
    }

    private static X509Certificate2 LoadRoot(string path)
    {
        var certificates = new X509Certificate2Collection();
        try
        {
            certificates.ImportFromPem(File.ReadAllText(path));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException)
        {
            throw new MeshctlException(ExitCodes.Usage, $"--root-cert '{path}' could not be read: {ex.Message}", ex);
        }

        if (certificates.Count != 1)
        {
            foreach (var certificate in certificates)
            {
                certificate.Dispose();
            }

            throw new MeshctlException(ExitCodes.Usage, certificates.Count == 0
                ? $"--root-cert '{path}' holds no PEM certificate."
                : $"--root-cert '{path}' holds {certificates.Count} certificates: give the one root that signs, alone in its file.");
        }

        var root = certificates[0];
        var constraints = root.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault();
        if (constraints is not { CertificateAuthority: true })
        {
            root.Dispose();
            throw new MeshctlException(ExitCodes.Usage, $"--root-cert '{path}' is not a CA certificate (basicConstraints CA:TRUE is missing): give the root's certificate.");
        }

        if (constraints is { HasPathLengthConstraint: true, PathLengthConstraint: 0 })
        {
            root.Dispose();
            throw new MeshctlException(ExitCodes.Usage, $"--root-cert '{path}' has a path length of 0: it may sign workload certificates only, not an intermediate CA.");
        }

        return root;
    }

    /// <summary>The given trust domain, else the root's; a root of another trust domain than the one given is refused.</summary>
    private static string ResolveTrustDomain(string? given, X509Certificate2 root, string rootPath)
    {
        string? rootDomain = null;
        foreach (var uri in SubjectAlternativeNames.GetUris(root))
        {
            if (uri.StartsWith(SpiffeId.Prefix, StringComparison.Ordinal) && SpiffeId.IsValidTrustDomain(uri[SpiffeId.Prefix.Length..].TrimEnd('/'), out _))
            {
                rootDomain = uri[SpiffeId.Prefix.Length..].TrimEnd('/');
                break;
            }
        }

        if (given is null)
        {
            return rootDomain ?? throw new MeshctlException(ExitCodes.Usage, $"--trust-domain is required: --root-cert '{rootPath}' names no trust domain (no spiffe://<trust-domain> URI SAN).");
        }

        CheckTrustDomain(given);
        if (rootDomain is not null && !string.Equals(rootDomain, given, StringComparison.Ordinal))
        {
            throw new MeshctlException(ExitCodes.Usage, $"--trust-domain '{given}' is not the trust domain of --root-cert '{rootPath}' (spiffe://{rootDomain}).");
        }

        return given;
    }

    private static AsymmetricAlgorithm LoadRootKey(string path, X509Certificate2 root, string rootPath)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new MeshctlException(ExitCodes.Usage, $"--root-key '{path}' could not be read: {ex.Message}", ex);
        }

        if (text.Contains("-----BEGIN ENCRYPTED PRIVATE KEY-----", StringComparison.Ordinal))
        {
            throw new MeshctlException(ExitCodes.Usage, $"--root-key '{path}' is encrypted: meshctl reads unencrypted PEM keys (decrypt it to a file only you can read, for example with 'openssl pkcs8', and delete that file afterwards).");
        }

        using var ecdsaPublic = root.GetECDsaPublicKey();
        using var rsaPublic = ecdsaPublic is null ? root.GetRSAPublicKey() : null;
        AsymmetricAlgorithm key = ecdsaPublic is not null ? ECDsa.Create()
            : rsaPublic is not null ? RSA.Create()
            : throw new MeshctlException(ExitCodes.Usage, $"--root-cert '{rootPath}' has a {root.PublicKey.Oid.FriendlyName ?? root.PublicKey.Oid.Value} key: meshctl signs with ECDSA or RSA roots only.");
        try
        {
            key.ImportFromPem(text);
            return key;
        }
        catch (Exception ex) when (ex is ArgumentException or CryptographicException)
        {
            key.Dispose();
            var kind = ecdsaPublic is not null ? "ECDSA private key ('PRIVATE KEY' or 'EC PRIVATE KEY')" : "RSA private key ('PRIVATE KEY' or 'RSA PRIVATE KEY')";
            throw new MeshctlException(ExitCodes.Usage, $"--root-key '{path}' holds no PEM {kind}, the kind of key --root-cert '{rootPath}' has: {Message(ex)}", ex);
        }
    }

    /// <summary>The first 8 hex digits of a key's identifier: two CAs of the same name and date still differ in subject.</summary>
    private static string KeyId(ECDsa key) =>
        new X509SubjectKeyIdentifierExtension(new PublicKey(key), critical: false).SubjectKeyIdentifier![..8];

    private static string Day(DateTimeOffset value) => value.UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);

    private static string Message(ArgumentException ex) =>
        ex.ParamName is { } name ? ex.Message.Replace($" (Parameter '{name}')", string.Empty, StringComparison.Ordinal) : ex.Message;

    private static string Message(Exception ex) => ex is ArgumentException argument ? Message(argument) : ex.Message;

    private static void EnsureDirectory(string path)
    {
        try
        {
            if (Directory.Exists(path))
            {
                return;
            }

            // The folder holds a private key: nobody else may list or enter it.
            if (OperatingSystem.IsWindows())
            {
                Directory.CreateDirectory(path);
            }
            else
            {
                Directory.CreateDirectory(path, OwnerOnlyDirectory);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new MeshctlException(ExitCodes.Usage, $"--out '{path}' could not be created: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// Writes a file atomically: a temporary file created with its final mode (owner-only for a key, so the key is never
    /// readable by others, even briefly), then moved into place; an existing file is replaced only with <c>--force</c>.
    /// </summary>
    private static void Write(string path, string contents, bool secret, bool replace)
    {
        var temporary = Path.Combine(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        var fileOptions = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (secret && !OperatingSystem.IsWindows())
        {
            fileOptions.UnixCreateMode = OwnerOnlyFile;
        }

        try
        {
            using (var stream = new FileStream(temporary, fileOptions))
            using (var writer = new StreamWriter(stream, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false)))
            {
                // A final newline, so that 'cat old.crt.pem new.crt.pem > bundle.pem' makes a valid bundle.
                writer.Write(contents.EndsWith('\n') ? contents : contents + "\n");
                writer.Flush();
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, path, overwrite: replace);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new MeshctlException(ExitCodes.Usage, $"'{path}' could not be written{(File.Exists(path) && !replace ? " (it exists: give --force to replace it)" : string.Empty)}: {ex.Message}", ex);
        }
        finally
        {
            if (File.Exists(temporary))
            {
                File.Delete(temporary);
            }
        }
    }
}
