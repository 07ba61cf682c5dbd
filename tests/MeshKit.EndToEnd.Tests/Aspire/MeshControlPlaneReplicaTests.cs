using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using MeshKit.Hosting.Aspire;
using MeshKit.Identity;
using TempDirectory = MeshKit.Testing.TempDirectory;

namespace MeshKit.EndToEnd.Tests.Aspire;

/// <summary>
/// <c>AddMeshControlPlane(..., s =&gt; s.Replicas = 3)</c>: several control-service replicas sharing their state through the
/// AppHost's Consul, each with its own folder and an intermediate CA the AppHost signed with the development root, whose
/// key never reaches a replica.
/// </summary>
[Trait("Area", "ControlPlaneHA")]
[Trait("Area", "Aspire")]
#pragma warning disable CS0618 // GetEnvironmentVariableValuesAsync is obsolete in Aspire 13.6 but is still the simplest way to evaluate a model without running it.
public sealed class MeshControlPlaneReplicaTests : IDisposable
{
    private const string Consul = "http://127.0.0.1:8500";
    private static readonly string Root = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", ".."));
    private static readonly string ControlPlaneProject = Path.Combine(Root, "src", "MeshKit.ControlPlane", "MeshKit.ControlPlane.csproj");
    private static readonly string OrdersProject = Path.Combine(Root, "samples", "Shop", "Shop.Orders", "Shop.Orders.csproj");
    internal static readonly string InventoryProject = Path.Combine(Root, "samples", "Shop", "Shop.Inventory", "Shop.Inventory.csproj");
    private readonly TempDirectory _state = new("aspire-replicas");

    public void Dispose() => _state.Dispose();

    private static IDistributedApplicationBuilder NewBuilder(params string[] args) =>
        DistributedApplication.CreateBuilder(new DistributedApplicationOptions { Args = args, DisableDashboard = true });

    [Fact]
    public async Task Three_replicas_are_three_resources_each_with_its_own_data_directory_and_intermediate_under_the_root_and_none_gets_the_roots_key()
    {
        var builder = NewBuilder($"--Consul:Address={Consul}");
        var mesh = builder.AddMeshControlPlane("mesh", ControlPlaneProject, s => (s.StateDirectory, s.TrustDomain, s.Replicas) = (_state.Path, "shop.test", 3));
        var orders = builder.AddProject("orders", OrdersProject).WithMesh(mesh, version: "v1");

        var replicas = builder.Resources.OfType<ProjectResource>().Where(r => r.Annotations.OfType<MeshControlPlaneAnnotation>().Any()).ToList();
        Assert.Equal(["mesh", "mesh-1", "mesh-2"], replicas.Select(r => r.Name));
        Assert.Same(mesh.Resource, replicas[0]);

        using var root = X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(_state.Path, "ca", "root.crt.pem")));
        var rootKeyPath = Path.Combine(_state.Path, "ca", "root.key.pem");
        var rootKeyPem = File.ReadAllText(rootKeyPath);
        var orderTokens = new HashSet<string>(StringComparer.Ordinal);
        var intermediates = new HashSet<string>(StringComparer.Ordinal);
        var adminTokens = new HashSet<string>(StringComparer.Ordinal);
        foreach (var replica in replicas)
        {
            var env = await replica.GetEnvironmentVariableValuesAsync(DistributedApplicationOperation.Publish);
            var folder = Path.Combine(_state.Path, "replicas", replica.Name);
            Assert.Equal("shop.test", env["ControlPlane__TrustDomain"]);
            Assert.Equal(Consul, env["ControlPlane__Consul__Address"]);
            Assert.Equal(Path.Combine(folder, "data"), env["ControlPlane__DataDirectory"]);
            Assert.Equal(Path.Combine(folder, "ca", "intermediate.crt.pem"), env["ControlPlane__Ca__CertificatePath"]);
            Assert.Equal(Path.Combine(folder, "ca", "intermediate.key.pem"), env["ControlPlane__Ca__KeyPath"]);
            Assert.Equal(File.ReadAllText(Path.Combine(_state.Path, "ca", "root.crt.pem")), File.ReadAllText(env["ControlPlane__Ca__TrustBundlePath"]));

            // The root's key is nowhere in the replica's environment, nor under the folder a replica is given.
            Assert.DoesNotContain(env.Values, v => v.Contains(rootKeyPath, StringComparison.Ordinal) || v.Contains(Path.Combine(_state.Path, "ca") + Path.DirectorySeparatorChar, StringComparison.Ordinal));
            Assert.DoesNotContain(Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories), f => File.ReadAllText(f).Contains(rootKeyPem.Trim(), StringComparison.Ordinal));
            Assert.False(env.ContainsKey("ControlPlane__AdminToken"));

            // Its own intermediate: CA:TRUE with path length 0, chaining to the development root, with its key beside it.
            using var intermediate = X509Certificate2.CreateFromPem(File.ReadAllText(env["ControlPlane__Ca__CertificatePath"]));
            var constraints = intermediate.Extensions.OfType<X509BasicConstraintsExtension>().Single();
            Assert.True(constraints.CertificateAuthority && constraints.HasPathLengthConstraint && constraints.PathLengthConstraint == 0);
            Assert.Equal(["spiffe://shop.test"], SubjectAlternativeNames.GetUris(intermediate));
            Assert.NotEqual(root.Subject, intermediate.Subject);
            Assert.True(ChainsTo(intermediate, root), $"{replica.Name}'s intermediate does not chain to the development root");
            using (var key = ECDsa.Create())
            {
                key.ImportFromPem(File.ReadAllText(env["ControlPlane__Ca__KeyPath"]));
                using var withKey = intermediate.CopyWithPrivateKey(key);
            }

            Assert.True(intermediates.Add(intermediate.Thumbprint), "every replica has an intermediate of its own");

            // The same join tokens on every replica; the same admin token in every data directory, owner-only.
            Assert.Equal("default/orders", env["ControlPlane__JoinTokens__orders__Services__0"]);
            orderTokens.Add(env["ControlPlane__JoinTokens__orders__Token"]);
            var adminToken = Path.Combine(folder, "data", "admin-token");
            adminTokens.Add(File.ReadAllText(adminToken));
            if (!OperatingSystem.IsWindows())
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(env["ControlPlane__Ca__KeyPath"]));
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(adminToken));
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(folder));
            }

            Assert.Contains(replica.Annotations.OfType<HealthCheckAnnotation>(), h => h.Key == $"{replica.Name}-meshkit-control-plane");
        }

        Assert.Single(orderTokens);
        Assert.Equal(Assert.Single(adminTokens), File.ReadAllText(Path.Combine(_state.Path, "replicas", "admin-token")));
        Assert.Equal(3, replicas.Select(r => r.Annotations.OfType<EndpointAnnotation>().Single(e => e.Name == "https")).Distinct().Count());

        // Workloads get every replica's address and wait for all of them.
        var ordersEnv = await orders.Resource.GetEnvironmentVariableValuesAsync(DistributedApplicationOperation.Publish);
        Assert.Equal(orderTokens.Single(), ordersEnv["Mesh__ControlPlane__JoinToken"]);
        Assert.Equal(
            ["https://127.0.0.1:{mesh.bindings.https.port}", "https://127.0.0.1:{mesh-1.bindings.https.port}", "https://127.0.0.1:{mesh-2.bindings.https.port}"],
            [ordersEnv["Mesh__ControlPlane__Address"], ordersEnv["Mesh__ControlPlane__Addresses__0"], ordersEnv["Mesh__ControlPlane__Addresses__1"]]);
        Assert.False(ordersEnv.ContainsKey("Mesh__ControlPlane__Addresses__2"));
        Assert.False(ordersEnv.ContainsKey("Mesh__ControlPlane__ConsulService"));
        Assert.Equal(Path.Combine(_state.Path, "ca", "root.crt.pem"), ordersEnv["Mesh__ControlPlane__TrustBundlePath"]);
        Assert.All(replicas, r => Assert.Contains(orders.Resource.Annotations.OfType<WaitAnnotation>(), w => w.Resource == r));

        // Something every replica must have alike goes through WithEveryReplica.
        mesh.WithEveryReplica(r => r.WithEnvironment("ControlPlane__Consul__KeyPrefix", "shop/"));
        foreach (var replica in replicas)
        {
            Assert.Equal("shop/", (await replica.GetEnvironmentVariableValuesAsync(DistributedApplicationOperation.Publish))["ControlPlane__Consul__KeyPrefix"]);
        }
    }

    [Fact]
    public async Task More_than_one_replica_without_Consul_is_refused_when_the_AppHost_is_built_naming_the_setting()
    {
        var refused = Assert.Throws<InvalidOperationException>(() =>
            NewBuilder().AddMeshControlPlane("mesh", ControlPlaneProject, s => (s.StateDirectory, s.Replicas) = (_state.Path, 2)));
        Assert.Contains("MeshControlPlaneSettings.Replicas is 2", refused.Message, StringComparison.Ordinal);
        Assert.Contains("'Consul:Address'", refused.Message, StringComparison.Ordinal);
        Assert.Contains("--Consul:Address=http://127.0.0.1:8500", refused.Message, StringComparison.Ordinal);

        var notUrl = Assert.Throws<InvalidOperationException>(() =>
            NewBuilder("--Consul:Address=consul:8500").AddMeshControlPlane("mesh", ControlPlaneProject, s => (s.StateDirectory, s.Replicas) = (_state.Path, 2)));
        Assert.Contains("'Consul:Address' is 'consul:8500'", notUrl.Message, StringComparison.Ordinal);

        var none = Assert.Throws<ArgumentOutOfRangeException>(() =>
            NewBuilder($"--Consul:Address={Consul}").AddMeshControlPlane("mesh", ControlPlaneProject, s => (s.StateDirectory, s.Replicas) = (_state.Path, 0)));
        Assert.Contains("MeshControlPlaneSettings.Replicas is 0; use 1 to 16", none.Message, StringComparison.Ordinal);

        // Nothing of the replicas was made, and one replica with Consul stays the single form: the root as its CA, no Consul.
        Assert.False(Directory.Exists(Path.Combine(_state.Path, "replicas")));
        var single = NewBuilder($"--Consul:Address={Consul}").AddMeshControlPlane("mesh", ControlPlaneProject, s => s.StateDirectory = _state.Path);
        var env = await single.Resource.GetEnvironmentVariableValuesAsync(DistributedApplicationOperation.Publish);
        Assert.Equal(Path.Combine(_state.Path, "ca", "root.key.pem"), env["ControlPlane__Ca__KeyPath"]);
        Assert.False(env.ContainsKey("ControlPlane__Consul__Address"));
    }

    [Fact]
    public void A_replicas_intermediate_is_kept_across_builds_and_made_again_when_missing_expiring_or_not_under_the_current_root()
    {
        void Build(string trustDomain = "mesh.local") =>
            NewBuilder($"--Consul:Address={Consul}").AddMeshControlPlane("mesh", ControlPlaneProject, s => (s.StateDirectory, s.Replicas, s.TrustDomain) = (_state.Path, 2, trustDomain));
        var certificatePath = Path.Combine(_state.Path, "replicas", "mesh-1", "ca", "intermediate.crt.pem");
        string Thumbprint()
        {
            using var certificate = X509Certificate2.CreateFromPem(File.ReadAllText(certificatePath));
            return certificate.Thumbprint;
        }

        Build();
        var first = Thumbprint();
        Build();
        Assert.Equal(first, Thumbprint());

        // Missing (the key deleted): made again.
        File.Delete(Path.Combine(_state.Path, "replicas", "mesh-1", "ca", "intermediate.key.pem"));
        Build();
        var second = Thumbprint();
        Assert.NotEqual(first, second);

        // Expiring within 30 days (it lives 90): made again.
        var root = DevelopmentCertificateAuthority.LoadOrCreate(Path.Combine(_state.Path, "ca"), "mesh.local", DateTimeOffset.UtcNow);
        var folder = Path.Combine(_state.Path, "replicas", "mesh-1", "ca");
        Assert.Equal(second, ReplicaCertificateAuthority.LoadOrCreate(folder, root, "mesh.local", "mesh-1", DateTimeOffset.UtcNow.AddDays(59)).Certificate.Thumbprint);
        var renewed = ReplicaCertificateAuthority.LoadOrCreate(folder, root, "mesh.local", "mesh-1", DateTimeOffset.UtcNow.AddDays(61));
        Assert.NotEqual(second, renewed.Certificate.Thumbprint);

        // A new root (here: the trust domain changed): every replica's intermediate is made again under it, and its trust
        // bundle is the new root.
        Build("other.test");
        using var newRoot = X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(_state.Path, "ca", "root.crt.pem")));
        foreach (var name in new[] { "mesh", "mesh-1" })
        {
            using var intermediate = X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(_state.Path, "replicas", name, "ca", "intermediate.crt.pem")));
            Assert.True(ChainsTo(intermediate, newRoot), $"{name}'s intermediate does not chain to the new root");
            Assert.Equal(newRoot.ExportCertificatePem() + "\n", File.ReadAllText(Path.Combine(_state.Path, "replicas", name, "ca", "root.crt.pem")));
        }
    }

    [Fact]
    public async Task Container_replicas_each_mount_their_own_folder_so_the_roots_key_is_not_in_any_container()
    {
        var builder = NewBuilder($"--Consul:Address={Consul}");
        var mesh = builder.AddMeshControlPlaneContainer("mesh", s => (s.StateDirectory, s.Replicas, s.Port) = (_state.Path, 2, 7443));
        var replicas = builder.Resources.OfType<ContainerResource>().ToList();
        Assert.Equal(["mesh", "mesh-1"], replicas.Select(r => r.Name));
        for (var i = 0; i < replicas.Count; i++)
        {
            var mount = replicas[i].Annotations.OfType<ContainerMountAnnotation>().Single();
            Assert.Equal((Path.Combine(_state.Path, "replicas", replicas[i].Name), "/meshkit"), (mount.Source, mount.Target));
            Assert.Equal(7443 + i, replicas[i].Annotations.OfType<EndpointAnnotation>().Single(e => e.Name == "https").Port);
            var env = await replicas[i].GetEnvironmentVariableValuesAsync(DistributedApplicationOperation.Publish);
            Assert.Equal("/meshkit/ca/intermediate.crt.pem", env["ControlPlane__Ca__CertificatePath"]);
            Assert.Equal("/meshkit/ca/intermediate.key.pem", env["ControlPlane__Ca__KeyPath"]);
            Assert.Equal("/meshkit/ca/root.crt.pem", env["ControlPlane__Ca__TrustBundlePath"]);
            Assert.Equal("/meshkit/data", env["ControlPlane__DataDirectory"]);
        }

        Assert.Same(mesh.Resource, replicas[0]);
    }

    /// <summary>Whether <paramref name="certificate"/> is signed by <paramref name="root"/> (directly: an intermediate).</summary>
    private static bool ChainsTo(X509Certificate2 certificate, X509Certificate2 root)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(root);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(certificate) && chain.ChainElements.Count == 2 && chain.ChainElements[1].Certificate.Thumbprint == root.Thumbprint;
    }
}
#pragma warning restore CS0618
