using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using MeshKit.Identity;
using MeshKit.Testing;

namespace MeshKit.ControlPlane.Tests.CertificateAuthority;

[Trait("Area", "Identity")]
public sealed class CertificateAuthorityTests
{
    private const string Token = "ca-tests-join-token-0123456789abc";

    private static Dictionary<string, string?> Settings(Dictionary<string, string?>? more = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["ControlPlane:JoinTokens:t:Token"] = Token,
            ["ControlPlane:JoinTokens:t:Services:0"] = "orders",
        };
        foreach (var (k, v) in more ?? [])
        {
            settings[k] = v;
        }

        return settings;
    }

    [Fact]
    public async Task The_generated_CA_key_and_admin_token_files_are_readable_by_their_owner_only()
    {
        if (OperatingSystem.IsWindows())
        {
            Assert.Skip("Unix file modes only.");
            return;
        }

        using var data = new TempDirectory("ca-mode");
        await using var host = await ControlPlaneHost.StartAsync(
            new Dictionary<string, string?> { ["ControlPlane:AdminToken"] = null },
            data.Path);

        var key = Path.Combine(data.Path, "ca", "root-1.key.pem");
        Assert.True(File.Exists(key));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(key));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(data.Path, "admin-token")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.Combine(data.Path, "ca")));

        // The key file really holds a P-256 private key; the certificate file holds none.
        using var ecdsa = ECDsa.Create();
        ecdsa.ImportFromPem(await File.ReadAllTextAsync(key, TestContext.Current.CancellationToken));
        Assert.Equal(256, ecdsa.KeySize);
        Assert.DoesNotContain("PRIVATE KEY", await File.ReadAllTextAsync(Path.Combine(data.Path, "ca", "root-1.crt.pem"), TestContext.Current.CancellationToken), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_root_survives_a_restart_of_the_control_service()
    {
        using var data = new TempDirectory("ca-restart");
        string before;
        await using (var host = await ControlPlaneHost.StartAsync(Settings(), data.Path))
        {
            before = host.TrustBundle.Version;
            var issued = await SignAsync(host);
            Assert.True(issued.IsValid);
        }

        await using (var host = await ControlPlaneHost.StartAsync(Settings(), data.Path))
        {
            Assert.Equal(before, host.TrustBundle.Version);

            // A certificate issued after the restart chains to the same root as before.
            using var client = host.CreateClient();
            var pem = await client.GetStringAsync("v1/trust-bundle", TestContext.Current.CancellationToken);
            Assert.Equal(before, TrustBundle.FromPem(pem).Version);
            Assert.True((await SignAsync(host)).IsValid);
        }
    }

    [Fact]
    public async Task A_user_supplied_intermediate_signs_and_the_chain_reaches_the_supplied_root()
    {
        using var data = new TempDirectory("ca-intermediate");
        using var rootKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var rootRequest = new CertificateRequest("CN=Corporate Root", rootKey, HashAlgorithmName.SHA256);
        rootRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        rootRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
        rootRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(rootRequest.PublicKey, false));
        using var root = rootRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(5));

        using var intermediateKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var intermediateRequest = new CertificateRequest("CN=Mesh Intermediate", intermediateKey, HashAlgorithmName.SHA256);
        intermediateRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        intermediateRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
        intermediateRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(intermediateRequest.PublicKey, false));
        intermediateRequest.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(root, true, false));
        using var intermediate = intermediateRequest.Create(root, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1), [1, 2, 3, 4]);

        var certPath = Path.Combine(data.Path, "intermediate.crt.pem");
        var keyPath = Path.Combine(data.Path, "intermediate.key.pem");
        var bundlePath = Path.Combine(data.Path, "roots.pem");
        await File.WriteAllTextAsync(certPath, intermediate.ExportCertificatePem(), TestContext.Current.CancellationToken);
        await File.WriteAllTextAsync(keyPath, intermediateKey.ExportPkcs8PrivateKeyPem(), TestContext.Current.CancellationToken);
        await File.WriteAllTextAsync(bundlePath, root.ExportCertificatePem(), TestContext.Current.CancellationToken);

        await using var host = await ControlPlaneHost.StartAsync(Settings(new()
        {
            ["ControlPlane:Ca:CertificatePath"] = certPath,
            ["ControlPlane:Ca:KeyPath"] = keyPath,
            ["ControlPlane:Ca:TrustBundlePath"] = bundlePath,
        }), Path.Combine(data.Path, "cp"));

        var bundle = host.TrustBundle;
        Assert.Equal(root.Thumbprint, Assert.Single(bundle.Roots).Thumbprint);

        var result = await SignAsync(host);
        Assert.True(result.IsValid, result.Detail);
        Assert.Equal(2, result.ChainLength);
    }

    [Fact]
    public async Task An_intermediate_that_does_not_chain_to_a_root_of_its_bundle_stops_the_start_naming_the_settings()
    {
        // An intermediate of one operator root, published with another root: its certificates would be refused everywhere.
        using var signing = new OperatorCa();
        using var published = new OperatorCa();
        var settings = signing.IntermediateFor(Settings(new()), trustBundlePath: published.RootCertificatePath);
        var error = await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await using var host = await ControlPlaneHost.StartAsync(settings);
        });

        var message = error.ToString();
        Assert.Contains("ControlPlane:Ca:CertificatePath", message, StringComparison.Ordinal);
        Assert.Contains("does not chain to a root in ControlPlane:Ca:TrustBundlePath", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invalid_settings_fail_at_start_with_errors_that_name_their_keys()
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await using var host = await ControlPlaneHost.StartAsync(new Dictionary<string, string?>
            {
                ["ControlPlane:TrustDomain"] = "Bad Domain",
                ["ControlPlane:CertificateLifetime"] = "00:00:00.5",
                ["ControlPlane:JoinTokens:weak:Token"] = "short",
                ["ControlPlane:JoinTokens:weak:Services:0"] = "mesh-system/control-plane",
                ["ControlPlane:JoinTokens:weak:Services:1"] = "*",
            });
        });

        var message = error.ToString();
        Assert.Contains("ControlPlane:TrustDomain", message, StringComparison.Ordinal);
        Assert.Contains("ControlPlane:CertificateLifetime", message, StringComparison.Ordinal);
        Assert.Contains("ControlPlane:JoinTokens:weak:Token", message, StringComparison.Ordinal);
        Assert.Contains("ControlPlane:JoinTokens:weak:Services:0", message, StringComparison.Ordinal);
        Assert.Contains("ControlPlane:JoinTokens:weak:Services:1", message, StringComparison.Ordinal);
        Assert.Contains("AllowWildcardGrants", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Wildcard_grants_work_only_behind_the_explicit_switch_and_never_cover_mesh_system()
    {
        await using var host = await ControlPlaneHost.StartAsync(new Dictionary<string, string?>
        {
            ["ControlPlane:AllowWildcardGrants"] = "true",
            ["ControlPlane:JoinTokens:all:Token"] = Token,
            ["ControlPlane:JoinTokens:all:Services:0"] = "*",
        });

        Assert.True((await SignAsync(host, SpiffeId.Create(ControlPlaneHost.TrustDomain, "payments", "anything"))).IsValid);
        var reserved = await SignAsync(host, SpiffeId.Create(ControlPlaneHost.TrustDomain, "mesh-system", "control-plane"));
        Assert.Equal(HttpStatusCode.Forbidden, reserved.Status);
    }

    [Fact]
    public async Task During_a_rotation_overlap_the_serving_chain_also_leads_to_the_root_that_does_not_issue_and_workload_chains_do_not()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var host = await ControlPlaneHost.StartAsync(Settings());
        using var admin = host.CreateAdminClient();
        Assert.Single(await PresentedChainAsync(host));

        // Step 1: a second root; the first still issues. The chain: leaf, then the issuing root certified by the new one.
        var added = await (await admin.PostAsync("v1/ca/roots", null, ct)).EnsureSuccessStatusCode().Content.ReadFromJsonAsync<JsonElement>(ct);
        var roots = added.GetProperty("roots").EnumerateArray().ToList();
        var oldId = roots.Single(r => r.GetProperty("active").GetBoolean()).GetProperty("id").GetString();
        var newId = roots.Single(r => !r.GetProperty("active").GetBoolean()).GetProperty("id").GetString();
        var bundle = host.TrustBundle;
        var oldRoot = bundle.Roots.Single(r => r.Subject.EndsWith(oldId!, StringComparison.Ordinal));
        var newRoot = bundle.Roots.Single(r => r.Subject.EndsWith(newId!, StringComparison.Ordinal));
        AssertCrossCertified(await PresentedChainAsync(host), issuing: oldRoot, other: newRoot);

        // Step 2: the new root issues; its key is certified by the old root.
        (await admin.PostAsync($"v1/ca/roots/{newId}/activate", null, ct)).EnsureSuccessStatusCode();
        AssertCrossCertified(await PresentedChainAsync(host), issuing: newRoot, other: oldRoot);

        // Workload certificates never carry it: the leaf alone, as before.
        Assert.Equal(1, (await SignAsync(host)).ChainLength);

        // Step 3: the old root is gone, and so is anything it signed from the presented chain.
        (await admin.DeleteAsync($"v1/ca/roots/{oldId}", ct)).EnsureSuccessStatusCode();
        var last = Assert.Single(await PresentedChainAsync(host));
        Assert.Equal(newRoot.Subject, last.Issuer);
    }

    private static void AssertCrossCertified(IReadOnlyList<X509Certificate2> presented, X509Certificate2 issuing, X509Certificate2 other)
    {
        Assert.Equal(2, presented.Count);
        var (leaf, cross) = (presented[0], presented[1]);
        Assert.Equal(issuing.Subject, leaf.Issuer);
        Assert.Equal(issuing.Subject, cross.Subject);
        Assert.Equal(other.Subject, cross.Issuer);
        Assert.Equal(issuing.PublicKey.EncodedKeyValue.RawData, cross.PublicKey.EncodedKeyValue.RawData);
        Assert.True(cross.Extensions.OfType<X509BasicConstraintsExtension>().Single().CertificateAuthority);
        Assert.True(cross.NotAfter <= leaf.NotAfter, $"the cross certificate ({cross.NotAfter:O}) outlives the leaf ({leaf.NotAfter:O})");

        // Either root alone validates the control service's certificate.
        foreach (var root in new[] { issuing, other })
        {
            var result = SvidValidator.Validate(leaf, [cross], TrustBundle.Create([root]), ControlPlaneHost.TrustDomain, DateTimeOffset.UtcNow, SvidUsage.Server);
            Assert.True(result.IsValid, result.Detail);
        }
    }

    /// <summary>The certificates the control service presents on a new connection: its leaf, then any others it sends.</summary>
    private static async Task<IReadOnlyList<X509Certificate2>> PresentedChainAsync(ControlPlaneHost host)
    {
        var presented = new List<X509Certificate2>();
        using var handler = new SocketsHttpHandler
        {
            SslOptions = new System.Net.Security.SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, chain, _) =>
                {
                    var leaf = certificate!.GetRawCertData();
                    presented.Add(X509CertificateLoader.LoadCertificate(leaf));

                    // The TLS stack puts everything the server sent into the extra store, the leaf included.
                    foreach (var extra in chain!.ChainPolicy.ExtraStore)
                    {
                        if (!extra.RawData.AsSpan().SequenceEqual(leaf))
                        {
                            presented.Add(X509CertificateLoader.LoadCertificate(extra.RawData));
                        }
                    }

                    return true;
                },
            },
        };
        using var client = new HttpClient(handler) { BaseAddress = host.BaseAddress };
        using var response = await client.GetAsync("v1/trust-bundle", TestContext.Current.CancellationToken);
        response.EnsureSuccessStatusCode();
        return presented;
    }

    private static async Task<SignOutcome> SignAsync(ControlPlaneHost host, SpiffeId? id = null)
    {
        id ??= SpiffeId.Create(ControlPlaneHost.TrustDomain, "default", "orders");
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var client = host.CreateClient(bearer: Token);
        using var response = await client.PostAsJsonAsync("v1/identity/sign", new { csr = CertificateSigningRequests.Create(key, id) }, TestContext.Current.CancellationToken);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            return new SignOutcome(response.StatusCode, false, await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken), 0);
        }

        var body = await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        var chain = new X509Certificate2Collection();
        chain.ImportFromPem(body.GetProperty("certificateChain").GetString()!);
        var bundle = TrustBundle.FromPem(body.GetProperty("trustBundle").GetString()!);
        var validation = SvidValidator.Validate(chain[0], chain, bundle, ControlPlaneHost.TrustDomain, DateTimeOffset.UtcNow, SvidUsage.Client);
        return new SignOutcome(response.StatusCode, validation.IsValid, validation.Detail ?? string.Empty, chain.Count);
    }

    private sealed record SignOutcome(HttpStatusCode Status, bool IsValid, string Detail, int ChainLength);
}
