using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using MeshKit.Identity;
using RootProfile = MeshKit.Testing.RootProfile;
using TempDirectory = MeshKit.Testing.TempDirectory;

namespace MeshKit.EndToEnd.Tests.Aspire;

/// <summary>
/// What <c>AddMeshControlPlane()</c> and <c>WithMesh()</c> put in the AppHost's model, read without starting anything:
/// environment values are evaluated as for publishing, so endpoint ports appear as Aspire's binding expressions.
/// </summary>
[Trait("Area", "Aspire")]
#pragma warning disable CS0618 // GetEnvironmentVariableValuesAsync is obsolete in Aspire 13.6 but is still the simplest way to evaluate a model without running it.
public sealed class MeshHostingTests : IDisposable
{
    private static readonly string Root = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", ".."));
    private static readonly string ControlPlaneProject = Path.Combine(Root, "src", "MeshKit.ControlPlane", "MeshKit.ControlPlane.csproj");
    private static readonly string OrdersProject = Path.Combine(Root, "samples", "Shop", "Shop.Orders", "Shop.Orders.csproj");
    private readonly TempDirectory _state = new("aspire-state");

    public void Dispose() => _state.Dispose();

    [Fact]
    public async Task WithMesh_gives_each_workload_its_identity_a_join_token_and_every_other_workloads_mesh_endpoint_with_its_version()
    {
        var builder = DistributedApplication.CreateBuilder(new DistributedApplicationOptions { Args = ["--Consul:Address=http://127.0.0.1:8500"], DisableDashboard = true });
        var mesh = builder.AddMeshControlPlane("mesh", ControlPlaneProject, settings =>
        {
            settings.StateDirectory = _state.Path;
            settings.TrustDomain = "shop.test";
            settings.CertificateLifetime = TimeSpan.FromMinutes(10);
        });
        var ordersV1 = builder.AddProject("orders-v1", OrdersProject).WithMesh(mesh, service: "orders", version: "v1");
        var ordersV2 = builder.AddProject("orders-v2", OrdersProject).WithMesh(mesh, service: "orders", version: "v2");
        var ledger = builder.AddProject("ledger", OrdersProject).WithMesh(mesh, @namespace: "payments");
        var frontend = builder.AddProject("frontend", OrdersProject).WithMesh(mesh);

        var env = await frontend.Resource.GetEnvironmentVariableValuesAsync(DistributedApplicationOperation.Publish);
        Assert.Equal("shop.test", env["Mesh__TrustDomain"]);
        Assert.Equal("frontend", env["Mesh__Service__Name"]);
        Assert.Equal("default", env["Mesh__Service__Namespace"]);
        Assert.False(env.ContainsKey("Mesh__Service__Version"));
        Assert.Equal("https://127.0.0.1:{mesh.bindings.https.port}", env["Mesh__ControlPlane__Address"]);
        Assert.Equal(Path.Combine(_state.Path, "ca", "root.crt.pem"), env["Mesh__ControlPlane__TrustBundlePath"]);
        Assert.Matches("^[0-9a-f]{48}$", env["Mesh__ControlPlane__JoinToken"]);
        Assert.Equal(Path.Combine(_state.Path, "workloads", "frontend"), env["Mesh__ControlPlane__StateDirectory"]);
        Assert.Equal("127.0.0.1", env["Mesh__Endpoint__Address"]);
        Assert.Equal("{frontend.bindings.mesh.targetPort}", env["Mesh__Endpoint__Port"]);
        Assert.Equal("http://127.0.0.1:8500", env["Mesh__Discovery__Consul__Address"]);

        // Static discovery: both versions of orders under one destination, another namespace's service by <svc>.<ns>.
        Assert.Equal("127.0.0.1:{orders-v1.bindings.mesh.port}", env["Mesh__Discovery__Static__orders__0__Address"]);
        Assert.Equal("v1", env["Mesh__Discovery__Static__orders__0__Version"]);
        Assert.Equal("127.0.0.1:{orders-v2.bindings.mesh.port}", env["Mesh__Discovery__Static__orders__1__Address"]);
        Assert.Equal("v2", env["Mesh__Discovery__Static__orders__1__Version"]);
        Assert.Equal("127.0.0.1:{ledger.bindings.mesh.port}", env["Mesh__Discovery__Static__ledger.payments__0__Address"]);
        Assert.DoesNotContain(env.Keys, k => k.StartsWith("Mesh__Discovery__Static__frontend", StringComparison.Ordinal));

        // From inside payments, the default namespace's services carry their namespace.
        var ledgerEnv = await ledger.Resource.GetEnvironmentVariableValuesAsync(DistributedApplicationOperation.Publish);
        Assert.Equal("payments", ledgerEnv["Mesh__Service__Namespace"]);
        Assert.Equal("127.0.0.1:{frontend.bindings.mesh.port}", ledgerEnv["Mesh__Discovery__Static__frontend.default__0__Address"]);
        Assert.Equal("v2", ledgerEnv["Mesh__Discovery__Static__orders.default__1__Version"]);

        // The control service: the development CA as a user-supplied CA, and one join token per resource granting its service.
        var control = await mesh.Resource.GetEnvironmentVariableValuesAsync(DistributedApplicationOperation.Publish);
        Assert.Equal("shop.test", control["ControlPlane__TrustDomain"]);
        Assert.Equal("00:10:00", control["ControlPlane__CertificateLifetime"]);
        Assert.Equal(Path.Combine(_state.Path, "ca", "root.crt.pem"), control["ControlPlane__Ca__CertificatePath"]);
        Assert.Equal(Path.Combine(_state.Path, "ca", "root.key.pem"), control["ControlPlane__Ca__KeyPath"]);
        Assert.Equal(Path.Combine(_state.Path, "control-plane"), control["ControlPlane__DataDirectory"]);
        Assert.False(control.ContainsKey("ControlPlane__AdminToken"));
        var tokens = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (resource, grant) in new[] { (ordersV1, "default/orders"), (ordersV2, "default/orders"), (ledger, "payments/ledger"), (frontend, "default/frontend") })
        {
            var workload = await resource.Resource.GetEnvironmentVariableValuesAsync(DistributedApplicationOperation.Publish);
            Assert.Equal(workload["Mesh__ControlPlane__JoinToken"], control[$"ControlPlane__JoinTokens__{resource.Resource.Name}__Token"]);
            Assert.Equal(grant, control[$"ControlPlane__JoinTokens__{resource.Resource.Name}__Services__0"]);
            Assert.True(tokens.Add(workload["Mesh__ControlPlane__JoinToken"]), "join tokens must differ per resource");
        }

        // Every workload waits for the control service.
        Assert.All(new[] { ordersV1, ordersV2, ledger, frontend }, r =>
            Assert.Contains(r.Resource.Annotations.OfType<WaitAnnotation>(), w => w.Resource == mesh.Resource));
    }

    [Fact]
    public void The_development_CA_is_a_P256_root_made_once_and_its_key_is_readable_by_its_owner_only()
    {
        var first = DistributedApplication.CreateBuilder(new DistributedApplicationOptions { DisableDashboard = true });
        first.AddMeshControlPlane("mesh", ControlPlaneProject, s => s.StateDirectory = _state.Path);
        var certificatePath = Path.Combine(_state.Path, "ca", "root.crt.pem");
        var keyPath = Path.Combine(_state.Path, "ca", "root.key.pem");
        using var root = X509Certificate2.CreateFromPem(File.ReadAllText(certificatePath));

        Assert.Equal(root.SubjectName.Name, root.IssuerName.Name);
        Assert.True(root.Extensions.OfType<X509BasicConstraintsExtension>().Single().CertificateAuthority);
        Assert.True(root.Extensions.OfType<X509KeyUsageExtension>().Single().KeyUsages.HasFlag(X509KeyUsageFlags.KeyCertSign));
        using (var key = root.GetECDsaPublicKey())
        {
            Assert.Equal(256, key!.KeySize);
        }

        // The same profile as the control service's own roots: both come from CertificateAuthorityRoots.
        Assert.Equal(SharedRootProfile("mesh.local"), RootProfile.Describe(root));

        using (var privateKey = ECDsa.Create())
        {
            privateKey.ImportFromPem(File.ReadAllText(keyPath));
            using var withKey = root.CopyWithPrivateKey(privateKey);
        }

        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyPath));
        }

        // A second AppHost start finds it and keeps it.
        var second = DistributedApplication.CreateBuilder(new DistributedApplicationOptions { DisableDashboard = true });
        second.AddMeshControlPlane("mesh", ControlPlaneProject, s => s.StateDirectory = _state.Path);
        using var again = X509Certificate2.CreateFromPem(File.ReadAllText(certificatePath));
        Assert.Equal(root.Thumbprint, again.Thumbprint);
    }

    [Fact]
    public void A_development_CA_without_the_trust_domains_SPIFFE_ID_or_of_another_trust_domain_is_set_aside_and_made_again()
    {
        // A root as the AppHost made it before the shared generator: no URI SAN.
        var ca = Path.Combine(_state.Path, "ca");
        Directory.CreateDirectory(ca);
        using (var oldKey = ECDsa.Create(ECCurve.NamedCurves.nistP256))
        {
            var request = new CertificateRequest("CN=MeshKit development root CA (old)", oldKey, HashAlgorithmName.SHA256);
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
            using var old = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddYears(5));
            File.WriteAllText(Path.Combine(ca, "root.crt.pem"), old.ExportCertificatePem());
            File.WriteAllText(Path.Combine(ca, "root.key.pem"), oldKey.ExportPkcs8PrivateKeyPem());
        }

        DistributedApplication.CreateBuilder(new DistributedApplicationOptions { DisableDashboard = true })
            .AddMeshControlPlane("mesh", ControlPlaneProject, s => s.StateDirectory = _state.Path);
        using var remade = X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(ca, "root.crt.pem")));
        Assert.Equal(SharedRootProfile("mesh.local"), RootProfile.Describe(remade));
        Assert.Single(Directory.GetDirectories(_state.Path, "ca.replaced-*"));

        // The same state folder for another trust domain: its root names that trust domain.
        DistributedApplication.CreateBuilder(new DistributedApplicationOptions { DisableDashboard = true })
            .AddMeshControlPlane("mesh", ControlPlaneProject, s => (s.StateDirectory, s.TrustDomain) = (_state.Path, "other.test"));
        using var other = X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(ca, "root.crt.pem")));
        Assert.Equal(["spiffe://other.test"], SubjectAlternativeNames.GetUris(other));
        Assert.NotEqual(remade.Thumbprint, other.Thumbprint);
    }

    [Fact]
    public void WithMesh_refuses_names_that_are_not_mesh_names_and_resources_that_are_not_a_control_service()
    {
        var builder = DistributedApplication.CreateBuilder(new DistributedApplicationOptions { DisableDashboard = true });
        var mesh = builder.AddMeshControlPlane("mesh", ControlPlaneProject, s => s.StateDirectory = _state.Path);
        var notMesh = builder.AddProject("other", OrdersProject);

        var badName = Assert.Throws<ArgumentException>(() => builder.AddProject("a", OrdersProject).WithMesh(mesh, service: "Orders"));
        Assert.Contains("'Orders' contains 'O' at position 0", badName.Message, StringComparison.Ordinal);
        Assert.Contains("DNS label", badName.Message, StringComparison.Ordinal);
        var reserved = Assert.Throws<ArgumentException>(() => builder.AddProject("b", OrdersProject).WithMesh(mesh, @namespace: "mesh-system"));
        Assert.Contains("reserved", reserved.Message, StringComparison.Ordinal);
        var badVersion = Assert.Throws<ArgumentException>(() => builder.AddProject("c", OrdersProject).WithMesh(mesh, version: "v 2"));
        Assert.Contains("'v 2'", badVersion.Message, StringComparison.Ordinal);

        // Versions follow the subset-name rule the policy reader applies to Split keys: the same inputs are refused.
        var index = 0;
        foreach (var version in new[] { "-v2", "v2.", "v" + new string('1', 63) })
        {
            var project = builder.AddProject($"e{index++}", OrdersProject);
            var refused = Assert.Throws<ArgumentException>(() => project.WithMesh(mesh, version: version));
            Assert.Contains("starting and ending with a letter or digit", refused.Message, StringComparison.Ordinal);
        }

        var notControl = Assert.Throws<ArgumentException>(() => builder.AddProject("d", OrdersProject).WithMesh(notMesh));
        Assert.Contains("not a MeshKit control service", notControl.Message, StringComparison.Ordinal);
    }

    private static IReadOnlyList<string> SharedRootProfile(string trustDomain)
    {
        using var key = CertificateAuthorityRoots.CreateKey();
        using var reference = CertificateAuthorityRoots.CreateRoot(key, trustDomain, new X500DistinguishedName("CN=reference"), DateTimeOffset.UtcNow, TimeSpan.FromDays(1));
        return RootProfile.Describe(reference);
    }
}
#pragma warning restore CS0618
