using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using MeshKit.Identity;
using MeshKit.Testing;
using MeshKit.Testing.Consul;

namespace MeshKit.Cli.Tests;

/// <summary>
/// A user-supplied CA across replicas with meshctl: the operator's root and each replica's intermediate made offline
/// (<c>ca root</c>, <c>ca intermediate</c>), a rotation by replacing the files and <c>ca reload</c> on every replica, and
/// what each replica publishes of its CA (<c>ca replicas</c>).
/// </summary>
[Trait("Area", "Cli")]
public sealed class CaReplicaTests
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    [Fact]
    public async Task Root_and_intermediate_have_the_CA_profile_chain_to_the_root_and_their_keys_are_owner_only()
    {
        using var files = new TempDirectory("ca-files");
        var root = await RootAsync(Path.Combine(files.Path, "operator"), "--lifetime", "365d");

        // No --trust-domain: the intermediate takes the root's.
        var intermediate = await IntermediateAsync(root, "replica-a", Path.Combine(files.Path, "replicas"));

        using var rootCertificate = Load(root.GetProperty("certificatePath").GetString()!);
        using var certificate = Load(intermediate.GetProperty("certificatePath").GetString()!);
        var rootConstraints = rootCertificate.Extensions.OfType<X509BasicConstraintsExtension>().Single();
        Assert.True(rootConstraints is { CertificateAuthority: true, HasPathLengthConstraint: false, Critical: true });
        Assert.Equal(["spiffe://test.mesh"], SubjectAlternativeNames.GetUris(rootCertificate));
        Assert.InRange(rootCertificate.NotAfter.ToUniversalTime(), DateTime.UtcNow.AddDays(364), DateTime.UtcNow.AddDays(366));

        var constraints = certificate.Extensions.OfType<X509BasicConstraintsExtension>().Single();
        Assert.True(constraints is { CertificateAuthority: true, HasPathLengthConstraint: true, PathLengthConstraint: 0, Critical: true });
        Assert.Equal(["spiffe://test.mesh"], SubjectAlternativeNames.GetUris(certificate));
        Assert.Contains("replica-a", certificate.Subject, StringComparison.Ordinal);
        Assert.InRange(certificate.NotAfter.ToUniversalTime(), DateTime.UtcNow.AddDays(29), DateTime.UtcNow.AddDays(31));
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(rootCertificate);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        Assert.True(chain.Build(certificate), string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation)));
        Assert.Equal(rootCertificate.Thumbprint, chain.ChainElements[^1].Certificate.Thumbprint);

        // The key written is the intermediate's; both keys are owner-only.
        using var key = ECDsa.Create();
        key.ImportFromPem(File.ReadAllText(intermediate.GetProperty("keyPath").GetString()!));
        using var publicKey = certificate.GetECDsaPublicKey()!;
        Assert.Equal(publicKey.ExportSubjectPublicKeyInfo(), key.ExportSubjectPublicKeyInfo());
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(OwnerOnly, File.GetUnixFileMode(root.GetProperty("keyPath").GetString()!));
            Assert.Equal(OwnerOnly, File.GetUnixFileMode(intermediate.GetProperty("keyPath").GetString()!));
        }

        // The replica's settings, as configuration keys and as environment variables.
        var settings = intermediate.GetProperty("settings");
        Assert.Equal(root.GetProperty("certificatePath").GetString(), settings.GetProperty("ControlPlane:Ca:TrustBundlePath").GetString());
        Assert.Equal(intermediate.GetProperty("keyPath").GetString(), intermediate.GetProperty("environmentVariables").GetProperty("ControlPlane__Ca__KeyPath").GetString());
    }

    [Fact]
    public async Task Existing_CA_files_are_replaced_only_with_force()
    {
        using var files = new TempDirectory("ca-force");
        var root = await RootAsync(files.Path);
        var keyPath = root.GetProperty("keyPath").GetString()!;
        var key = await File.ReadAllTextAsync(keyPath, TestContext.Current.CancellationToken);

        var again = await Cli.RunAsync("ca", "root", "--trust-domain", ControlPlaneHost.TrustDomain, "--out", files.Path);
        Assert.Equal(ExitCodes.Usage, again.ExitCode);
        Assert.Contains("--force", again.Error, StringComparison.Ordinal);
        Assert.Equal(key, await File.ReadAllTextAsync(keyPath, TestContext.Current.CancellationToken));

        await RootAsync(files.Path, "--force");
        Assert.NotEqual(key, await File.ReadAllTextAsync(keyPath, TestContext.Current.CancellationToken));
        Assert.DoesNotContain(Directory.GetFiles(files.Path), f => f.EndsWith(".tmp", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Bad_input_is_refused_naming_the_option_and_nothing_is_written()
    {
        using var files = new TempDirectory("ca-refusals");
        var root = await RootAsync(Path.Combine(files.Path, "operator"));
        var other = await RootAsync(Path.Combine(files.Path, "other"));
        var intermediate = await IntermediateAsync(root, "replica-a", Path.Combine(files.Path, "replicas"));
        var leaf = Path.Combine(files.Path, "leaf.pem");
        using (var leafKey = ECDsa.Create(ECCurve.NamedCurves.nistP256))
        using (var leafCertificate = new CertificateRequest("CN=not a CA", leafKey, HashAlgorithmName.SHA256).CreateSelfSigned(DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(1)))
        {
            await File.WriteAllTextAsync(leaf, leafCertificate.ExportCertificatePem(), TestContext.Current.CancellationToken);
        }

        var output = Path.Combine(files.Path, "refused");
        string rootCertificate = root.GetProperty("certificatePath").GetString()!, rootKey = root.GetProperty("keyPath").GetString()!;
        string[] Intermediate(string certificate, string key, string name, params string[] extra) =>
            ["ca", "intermediate", "--root-cert", certificate, "--root-key", key, "--name", name, "--out", output, .. extra];
        (string[] Args, string Names)[] cases =
        [
            (["ca", "root", "--out", output], "--trust-domain is required"),
            (["ca", "root", "--trust-domain", "Not A Domain", "--out", output], "--trust-domain 'Not A Domain'"),
            (Intermediate(Path.Combine(files.Path, "missing.pem"), rootKey, "r1"), "--root-cert"),
            (Intermediate(leaf, rootKey, "r1"), "--root-cert"),
            (Intermediate(intermediate.GetProperty("certificatePath").GetString()!, intermediate.GetProperty("keyPath").GetString()!, "r1"), "--root-cert"),
            (Intermediate(rootCertificate, other.GetProperty("keyPath").GetString()!, "r1"), "--root-key"),
            (Intermediate(rootCertificate, leaf, "r1"), "--root-key"),
            (Intermediate(rootCertificate, rootKey, "../r1"), "--name '../r1'"),
            (Intermediate(rootCertificate, rootKey, "r1", "--trust-domain", "other.mesh"), "--trust-domain 'other.mesh'"),
            (Intermediate(rootCertificate, rootKey, "r1", "--lifetime", "0s"), "--lifetime"),
        ];

        foreach (var (args, names) in cases)
        {
            var result = await Cli.RunAsync(args);
            Assert.True(result.ExitCode == ExitCodes.Usage && result.Error.Contains(names, StringComparison.Ordinal), $"{string.Join(' ', args)}: {result}");
        }

        Assert.False(Directory.Exists(output));
    }

    [Fact]
    public async Task Reload_moves_each_replica_to_its_new_intermediate_of_the_same_root()
    {
        using var files = new TempDirectory("ca-reload");
        var root = await RootAsync(Path.Combine(files.Path, "operator"));
        var first = await IntermediateAsync(root, "replica-a", Path.Combine(files.Path, "a"));
        var second = await IntermediateAsync(root, "replica-b", Path.Combine(files.Path, "b"));
        await using var replicaA = await ControlPlaneHost.StartAsync(Settings(first));
        await using var replicaB = await ControlPlaneHost.StartAsync(Settings(second));

        // The operator signs new intermediates with the same root into the files the replicas read, then reloads both.
        var nextA = await IntermediateAsync(root, "replica-a", Path.Combine(files.Path, "a"), "--force");
        var nextB = await IntermediateAsync(root, "replica-b", Path.Combine(files.Path, "b"), "--force");
        var reload = await Cli.RunAsync(Admin, null, ["ca", "reload", "--json", .. Connection(root.GetProperty("certificatePath").GetString()!, replicaA, replicaB)]);

        Assert.True(reload.ExitCode == 0, reload.ToString());
        var results = reload.Json.GetProperty("replicas").EnumerateArray().ToList();
        Assert.Equal([replicaA.BaseAddress.ToString(), replicaB.BaseAddress.ToString()], results.Select(r => r.GetProperty("replica").GetString()));
        Assert.All(results, r => Assert.Equal("reloaded", r.GetProperty("result").GetString()));
        Assert.Equal(Sha256(nextA), results[0].GetProperty("issuer").GetProperty("sha256").GetString());
        Assert.Equal(Sha256(nextB), results[1].GetProperty("issuer").GetProperty("sha256").GetString());
        Assert.All(results, r => Assert.Equal(Sha256(root), r.GetProperty("root").GetProperty("sha256").GetString()));
        Assert.NotEqual(Sha256(first), Sha256(nextA));
        using var admin = replicaA.CreateAdminClient();
        var roots = await admin.GetFromJsonAsync<JsonElement>("v1/ca/roots", TestContext.Current.CancellationToken);
        Assert.Equal(Sha256(nextA), roots.GetProperty("issuer").GetProperty("sha256").GetString());
    }

    [Fact]
    public async Task Reload_stops_at_the_first_refusal_printing_its_reason_and_leaving_the_later_replicas_alone()
    {
        using var files = new TempDirectory("ca-reload-refused");
        var root = await RootAsync(Path.Combine(files.Path, "operator"));
        var stranger = await RootAsync(Path.Combine(files.Path, "stranger"));
        var first = await IntermediateAsync(root, "replica-a", Path.Combine(files.Path, "a"));
        var second = await IntermediateAsync(root, "replica-b", Path.Combine(files.Path, "b"));
        await using var replicaA = await ControlPlaneHost.StartAsync(Settings(first));
        await using var replicaB = await ControlPlaneHost.StartAsync(Settings(second));

        // Replica A's files now hold an intermediate of a root its trust bundle does not hold.
        await IntermediateAsync(stranger, "replica-a", Path.Combine(files.Path, "a"), "--force");
        await IntermediateAsync(root, "replica-b", Path.Combine(files.Path, "b"), "--force");
        var connection = Connection(root.GetProperty("certificatePath").GetString()!, replicaA, replicaB);
        var reload = await Cli.RunAsync(Admin, null, ["ca", "reload", .. connection]);
        var json = await Cli.RunAsync(Admin, null, ["ca", "reload", "--json", .. connection]);

        Assert.True(reload.ExitCode == ExitCodes.Usage, reload.ToString());
        Assert.Contains("refused (400 ca-files-invalid)", reload.Out, StringComparison.Ordinal);
        Assert.Contains("ControlPlane:Ca", reload.Out, StringComparison.Ordinal);
        Assert.Contains("not tried", reload.Out, StringComparison.Ordinal);
        Assert.Contains("ca-files-invalid", reload.Error, StringComparison.Ordinal);
        Assert.Equal(["refused", "not-tried"], json.Json.GetProperty("replicas").EnumerateArray().Select(r => r.GetProperty("result").GetString()));
        Assert.Equal("ca-files-invalid", json.Json.GetProperty("replicas")[0].GetProperty("reason").GetString());

        // Neither replica changed issuer.
        foreach (var (replica, issued) in new[] { (replicaA, first), (replicaB, second) })
        {
            using var admin = replica.CreateAdminClient();
            var roots = await admin.GetFromJsonAsync<JsonElement>("v1/ca/roots", TestContext.Current.CancellationToken);
            Assert.Equal(Sha256(issued), roots.GetProperty("issuer").GetProperty("sha256").GetString());
        }
    }

    [Fact]
    public async Task A_reload_another_replica_would_not_trust_is_a_conflict_and_ca_replicas_shows_why()
    {
        using var files = new TempDirectory("ca-conflict");
        await using var consul = await ConsulDouble.StartAsync();
        var root = await RootAsync(Path.Combine(files.Path, "operator"));
        var other = await RootAsync(Path.Combine(files.Path, "other"));
        await using var replicaA = await ControlPlaneHost.StartAsync(WithConsul(Settings(await IntermediateAsync(root, "replica-a", Path.Combine(files.Path, "a"))), consul));

        // Replica B was given an intermediate of another root, and a bundle without replica A's root.
        await using var replicaB = await ControlPlaneHost.StartAsync(WithConsul(Settings(await IntermediateAsync(other, "replica-b", Path.Combine(files.Path, "b"))), consul));
        var bundle = Path.Combine(files.Path, "both.pem");
        await File.WriteAllTextAsync(bundle, File.ReadAllText(root.GetProperty("certificatePath").GetString()!) + File.ReadAllText(other.GetProperty("certificatePath").GetString()!), TestContext.Current.CancellationToken);
        using var admin = replicaA.CreateAdminClient();
        await Eventually.WaitAsync(
            async () => (await admin.GetFromJsonAsync<JsonElement>("v1/ca/replicas", TestContext.Current.CancellationToken)).GetProperty("others").GetArrayLength() == 1,
            TimeSpan.FromSeconds(10),
            "replica A reads replica B's CA record",
            TimeSpan.FromMilliseconds(100));

        var replicas = await Cli.RunAsync(Admin, null, ["ca", "replicas", "--control-plane", replicaA.BaseAddress.ToString(), "--trust-bundle", bundle]);
        var reload = await Cli.RunAsync(Admin, null, ["ca", "reload", .. Connection(bundle, replicaA, replicaB)]);

        Assert.True(replicas.ExitCode == ExitCodes.Findings, replicas.ToString());
        Assert.Contains("(asked)", replicas.Out, StringComparison.Ordinal);
        Assert.Contains("replica-b", replicas.Out, StringComparison.Ordinal);
        Assert.Contains(Sha256(other)[..16], replicas.Out, StringComparison.Ordinal);
        Assert.Contains("conflict: Replica", replicas.Out, StringComparison.Ordinal);
        Assert.True(reload.ExitCode == ExitCodes.Conflict, reload.ToString());
        Assert.Contains("refused (409 ca-trust-conflict)", reload.Out, StringComparison.Ordinal);
    }

    private static readonly Dictionary<string, string> Admin = new() { ["MESHCTL_ADMIN_TOKEN"] = ControlPlaneHost.AdminToken };

    private static string[] Connection(string bundle, params ControlPlaneHost[] replicas) =>
        ["--control-plane", string.Join(',', replicas.Select(r => r.BaseAddress.ToString())), "--trust-bundle", bundle];

    private static async Task<JsonElement> RootAsync(string folder, params string[] extra)
    {
        var result = await Cli.RunAsync(["ca", "root", "--trust-domain", ControlPlaneHost.TrustDomain, "--out", folder, "--json", .. extra]);
        Assert.True(result.ExitCode == 0, result.ToString());
        return result.Json;
    }

    private static async Task<JsonElement> IntermediateAsync(JsonElement root, string name, string folder, params string[] extra)
    {
        var result = await Cli.RunAsync([
            "ca", "intermediate", "--root-cert", root.GetProperty("certificatePath").GetString()!, "--root-key", root.GetProperty("keyPath").GetString()!,
            "--name", name, "--out", folder, "--json", .. extra]);
        Assert.True(result.ExitCode == 0, result.ToString());
        return result.Json;
    }

    /// <summary>The replica's settings as <c>ca intermediate</c> printed them.</summary>
    private static Dictionary<string, string?> Settings(JsonElement intermediate) =>
        intermediate.GetProperty("settings").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString());

    private static Dictionary<string, string?> WithConsul(Dictionary<string, string?> settings, ConsulDouble consul)
    {
        settings["ControlPlane:Consul:Address"] = consul.Address.ToString();
        settings["ControlPlane:Consul:Wait"] = "00:00:01";
        return settings;
    }

    private static string Sha256(JsonElement written) => written.GetProperty("sha256").GetString()!;

    private static X509Certificate2 Load(string path) => X509Certificate2.CreateFromPem(File.ReadAllText(path));
}
