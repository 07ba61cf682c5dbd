using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using ConsulDouble = MeshKit.Testing.Consul.ConsulDouble;
using Eventually = MeshKit.Testing.Eventually;
using TempDirectory = MeshKit.Testing.TempDirectory;

namespace MeshKit.EndToEnd.Tests.Aspire;

/// <summary>
/// A real AppHost with three control-service replicas on a Consul double. It starts four processes, so it runs with the
/// other whole AppHosts, alone (<see cref="Shop.AppHostCollection"/>), not beside the parallel tests.
/// </summary>
[Trait("Area", "ControlPlaneHA")]
[Trait("Area", "Aspire")]
[Collection(Shop.AppHostCollection.Name)]
public sealed class MeshControlPlaneReplicaAppHostTests : IDisposable
{
    private readonly TempDirectory _state = new("aspire-replicas-run");

    public void Dispose() => _state.Dispose();

    [Fact]
    [Trait("Area", "EndToEnd")]
    public async Task An_AppHost_runs_three_replicas_on_Consul_all_healthy_and_a_meshed_workload_gets_a_certificate_every_replica_lists()
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        deadline.CancelAfter(TimeSpan.FromSeconds(90));
        var cancellationToken = deadline.Token;
        await using var consul = await ConsulDouble.StartAsync();

        var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.Smoke_AppHost>([$"--Consul:Address={consul.Address}"], cancellationToken);

        // The Smoke AppHost brings the test's DCP settings; its own service is not needed here.
        builder.Resources.Remove(builder.Resources.Single(r => r.Name == "smoke"));
        var mesh = builder.AddMeshControlPlane("mesh", s => (s.StateDirectory, s.ToolPath, s.Replicas) = (_state.Path, MeshControlPlaneToolTests.BuiltControlPlaneExecutable(), 3));
        builder.AddProject<BuiltInventory>("inventory").WithMesh(mesh, version: "v1")
            // No dashboard here: an OTLP exporter would spend ~10 s of the stop flushing to an endpoint nobody serves.
            .WithEnvironment("OTEL_SDK_DISABLED", "true");
        await using var app = await builder.BuildAsync(cancellationToken);
        await app.StartAsync(cancellationToken);

        // Healthy = /healthz over TLS with a certificate from the replica's intermediate, chaining to the development root.
        string[] names = ["mesh", "mesh-1", "mesh-2"];
        await Task.WhenAll(names.Select(n => app.ResourceNotifications.WaitForResourceHealthyAsync(n, cancellationToken)));

        // The workload starts only with a certificate; every replica then lists it (the registry is shared in Consul), and
        // answers the one admin token the AppHost gave them all.
        await app.ResourceNotifications.WaitForResourceAsync("inventory", KnownResourceStates.Running, cancellationToken);
        var adminToken = File.ReadAllText(Path.Combine(_state.Path, "replicas", "admin-token"));
        using var root = X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(_state.Path, "ca", "root.crt.pem")));
        var issuers = names.Select(n => IntermediateSubject(Path.Combine(_state.Path, "replicas", n, "ca", "intermediate.crt.pem"))).ToHashSet(StringComparer.Ordinal);
        using var http = new HttpClient(new SocketsHttpHandler
        {
            // Trust only the development root: a replica's certificate chains to it through the intermediate it sends.
            SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, certificate, chain, _) => ServedUnder(certificate, chain, root) },
        })
        { Timeout = TimeSpan.FromSeconds(5) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", adminToken);
        foreach (var name in names)
        {
            var resource = (IResourceWithEndpoints)builder.Resources.Single(r => r.Name == name);
            var port = resource.GetEndpoint("https").Port;
            await Eventually.WaitAsync(
                async () =>
                {
                    using var response = await http.GetAsync(new Uri($"https://127.0.0.1:{port}/v1/workloads"), cancellationToken);
                    Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
                    using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
                    return document.RootElement.GetProperty("workloads").EnumerateArray().Any(w =>
                        w.GetProperty("spiffeId").GetString() == "spiffe://mesh.local/ns/default/svc/inventory"
                        && issuers.Contains(w.GetProperty("certificateIssuer").GetString()!));
                },
                TimeSpan.FromSeconds(20),
                $"replica {name} lists inventory with a certificate from a replica's intermediate");
        }

        // Each replica registered itself in Consul, where a workload with Mesh:ControlPlane:ConsulService would find it.
        using var plain = new HttpClient();
        using var catalog = JsonDocument.Parse(await plain.GetStringAsync(new Uri(consul.Address, "/v1/health/service/mesh-control?passing"), cancellationToken));
        Assert.Equal(3, catalog.RootElement.GetArrayLength());
    }

    /// <summary>Shop.Inventory as this build made it: started without <c>dotnet run</c> building it again (~15 s here).</summary>
    private sealed class BuiltInventory : IProjectMetadata
    {
        public string ProjectPath => MeshControlPlaneReplicaTests.InventoryProject;

        public bool SuppressBuild => true;
    }

    private static string IntermediateSubject(string path)
    {
        using var certificate = X509Certificate2.CreateFromPem(File.ReadAllText(path));
        return certificate.Subject;
    }

    private static bool ServedUnder(X509Certificate? presented, X509Chain? sent, X509Certificate2 root)
    {
        if (presented is null || sent is null)
        {
            return false;
        }

        using var leaf = X509CertificateLoader.LoadCertificate(presented.GetRawCertData());
        using var chain = new X509Chain();
        chain.ChainPolicy.ExtraStore.AddRange(sent.ChainPolicy.ExtraStore);
        foreach (var element in sent.ChainElements)
        {
            chain.ChainPolicy.ExtraStore.Add(element.Certificate);
        }

        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(root);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(leaf) && chain.ChainElements.Count == 3;
    }
}
