using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using MeshKit.Hosting.Aspire;
using TempDirectory = MeshKit.Testing.TempDirectory;

namespace MeshKit.EndToEnd.Tests.Aspire;

/// <summary>
/// <c>AddMeshControlPlane(name)</c> for an AppHost that has only the packages: it runs the installed <c>meshkit-control</c>
/// tool (or, with <c>AddMeshControlPlaneContainer</c>, the image), found by a configured path, a local tool manifest or PATH.
/// </summary>
[Trait("Area", "Aspire")]
#pragma warning disable CS0618 // GetEnvironmentVariableValuesAsync / GetArgumentValuesAsync are obsolete in Aspire 13.6 but still the simplest way to evaluate a model without running it.
public sealed class MeshControlPlaneToolTests : IDisposable
{
    private static readonly string Root = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", ".."));
    private static readonly string OrdersProject = Path.Combine(Root, "samples", "Shop", "Shop.Orders", "Shop.Orders.csproj");
    private readonly TempDirectory _state = new("aspire-tool");

    public void Dispose() => _state.Dispose();

    /// <summary>The control service's apphost as this build made it (Shop.AppHost references the project, so it is built).</summary>
    internal static string BuiltControlPlaneExecutable()
    {
        var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";
        var executable = Path.Combine(Root, "src", "MeshKit.ControlPlane", "bin", configuration, "net10.0", OperatingSystem.IsWindows() ? "MeshKit.ControlPlane.exe" : "MeshKit.ControlPlane");
        Assert.True(File.Exists(executable), $"The control service was not built at {executable}.");
        return executable;
    }

    [Fact]
    public async Task The_tool_form_runs_the_configured_executable_with_the_development_CA_an_https_url_and_the_workloads_join_tokens()
    {
        var tool = Path.Combine(_state.Path, "bin", "meshkit-control");
        Directory.CreateDirectory(Path.GetDirectoryName(tool)!);
        await File.WriteAllTextAsync(tool, "#!/bin/sh\n", TestContext.Current.CancellationToken);

        var builder = DistributedApplication.CreateBuilder(new DistributedApplicationOptions { DisableDashboard = true });
        var mesh = builder.AddMeshControlPlane("mesh", s => (s.StateDirectory, s.ToolPath, s.TrustDomain) = (_state.Path, tool, "shop.test"));
        var orders = builder.AddProject("orders", OrdersProject).WithMesh(mesh, version: "v1");

        Assert.IsType<ExecutableResource>(mesh.Resource);
        Assert.Equal(tool, mesh.Resource.Command);
        var control = await mesh.Resource.GetEnvironmentVariableValuesAsync(DistributedApplicationOperation.Publish);
        Assert.Equal("https://127.0.0.1:{mesh.bindings.https.targetPort}", control["ASPNETCORE_URLS"]);
        Assert.Equal("shop.test", control["ControlPlane__TrustDomain"]);
        Assert.Equal(Path.Combine(_state.Path, "ca", "root.crt.pem"), control["ControlPlane__Ca__CertificatePath"]);
        Assert.Equal(Path.Combine(_state.Path, "ca", "root.key.pem"), control["ControlPlane__Ca__KeyPath"]);
        Assert.Equal(Path.Combine(_state.Path, "control-plane"), control["ControlPlane__DataDirectory"]);

        // WithMesh takes the executable like the project: the workload's token is registered with the tool's process.
        var workload = await orders.Resource.GetEnvironmentVariableValuesAsync(DistributedApplicationOperation.Publish);
        Assert.Equal("https://127.0.0.1:{mesh.bindings.https.port}", workload["Mesh__ControlPlane__Address"]);
        Assert.Equal(workload["Mesh__ControlPlane__JoinToken"], control["ControlPlane__JoinTokens__orders__Token"]);
        Assert.Equal("default/orders", control["ControlPlane__JoinTokens__orders__Services__0"]);
        Assert.Contains(orders.Resource.Annotations.OfType<WaitAnnotation>(), w => w.Resource == mesh.Resource);
        Assert.Contains(mesh.Resource.Annotations.OfType<HealthCheckAnnotation>(), h => h.Key == "mesh-meshkit-control-plane");
    }

    [Fact]
    public void The_tool_is_found_through_a_local_tool_manifest_before_PATH_and_a_missing_tool_says_how_to_install_it()
    {
        var appHost = Directory.CreateDirectory(Path.Combine(_state.Path, "repo", "src", "AppHost")).FullName;
        var onPath = Directory.CreateDirectory(Path.Combine(_state.Path, "path")).FullName;
        File.WriteAllText(Path.Combine(onPath, MeshControlPlaneTool.CommandName), "#!/bin/sh\n");

        // PATH, when no manifest lists the tool (a manifest of other tools does not count).
        Directory.CreateDirectory(Path.Combine(_state.Path, "repo", ".config"));
        File.WriteAllText(Path.Combine(_state.Path, "repo", ".config", "dotnet-tools.json"), """{ "version": 1, "isRoot": true, "tools": { "dotnet-ef": { "version": "10.0.0", "commands": ["dotnet-ef"] } } }""");
        var fromPath = MeshControlPlaneTool.Find(null, appHost, onPath, home: null);
        Assert.Equal(Path.Combine(onPath, MeshControlPlaneTool.CommandName), fromPath.Command);
        Assert.Empty(fromPath.Arguments);

        // A manifest above the AppHost that lists MeshKit.ControlPlane wins, run from the manifest's folder.
        File.WriteAllText(Path.Combine(_state.Path, "repo", ".config", "dotnet-tools.json"), """{ "version": 1, "isRoot": true, "tools": { "meshkit.controlplane": { "version": "0.1.0", "commands": ["meshkit-control"] } } }""");
        var local = MeshControlPlaneTool.Find(null, appHost, onPath, home: null);
        Assert.Equal("dotnet", local.Command);
        Assert.Equal(["tool", "run", "meshkit-control"], local.Arguments);
        Assert.Equal(Path.Combine(_state.Path, "repo"), local.WorkingDirectory);

        // A configured .dll runs with dotnet; a configured path that does not exist is refused, naming the setting.
        var dll = Path.Combine(_state.Path, "MeshKit.ControlPlane.dll");
        File.WriteAllText(dll, string.Empty);
        var configured = MeshControlPlaneTool.Find(dll, appHost, onPath, home: null);
        Assert.Equal(("dotnet", dll), (configured.Command, configured.Arguments.Single()));
        var wrongPath = Assert.Throws<InvalidOperationException>(() => MeshControlPlaneTool.Find("nope/meshkit-control", appHost, onPath, home: null));
        Assert.Contains("MeshControlPlaneSettings.ToolPath", wrongPath.Message, StringComparison.Ordinal);

        // Nowhere: the error says how to install it and what the other forms are.
        var elsewhere = Directory.CreateDirectory(Path.Combine(_state.Path, "elsewhere")).FullName;
        var missing = Assert.Throws<InvalidOperationException>(() => MeshControlPlaneTool.Find(null, elsewhere, path: elsewhere, home: elsewhere));
        Assert.Contains("dotnet tool install MeshKit.ControlPlane", missing.Message, StringComparison.Ordinal);
        Assert.Contains("AddMeshControlPlaneContainer()", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_container_form_runs_the_image_of_this_version_with_the_state_folder_mounted_and_paths_inside_it()
    {
        var builder = DistributedApplication.CreateBuilder(new DistributedApplicationOptions { DisableDashboard = true });
        var mesh = builder.AddMeshControlPlaneContainer("mesh", s => s.StateDirectory = _state.Path);
        var orders = builder.AddProject("orders", OrdersProject).WithMesh(mesh);

        var image = mesh.Resource.Annotations.OfType<ContainerImageAnnotation>().Single();
        Assert.Equal((MeshControlPlaneSettings.DefaultContainerImage, MeshControlPlaneSettings.DefaultContainerTag), (image.Image, image.Tag));
        Assert.Matches(@"^\d+\.\d+\.\d+", MeshControlPlaneSettings.DefaultContainerTag);
        var mount = mesh.Resource.Annotations.OfType<ContainerMountAnnotation>().Single();
        Assert.Equal((_state.Path, "/meshkit"), (mount.Source, mount.Target));
        var endpoint = mesh.Resource.Annotations.OfType<EndpointAnnotation>().Single(e => e.Name == "https");
        Assert.Equal(8443, endpoint.TargetPort);

        var control = await mesh.Resource.GetEnvironmentVariableValuesAsync(DistributedApplicationOperation.Publish);
        Assert.Equal("/meshkit/ca/root.crt.pem", control["ControlPlane__Ca__CertificatePath"]);
        Assert.Equal("/meshkit/ca/root.key.pem", control["ControlPlane__Ca__KeyPath"]);
        Assert.Equal("/meshkit/control-plane", control["ControlPlane__DataDirectory"]);

        // Workloads run on the host: they trust the root by its host path and reach the container through its host port.
        var workload = await orders.Resource.GetEnvironmentVariableValuesAsync(DistributedApplicationOperation.Publish);
        Assert.Equal(Path.Combine(_state.Path, "ca", "root.crt.pem"), workload["Mesh__ControlPlane__TrustBundlePath"]);
        Assert.Equal("https://127.0.0.1:{mesh.bindings.https.port}", workload["Mesh__ControlPlane__Address"]);
        Assert.Equal(workload["Mesh__ControlPlane__JoinToken"], control["ControlPlane__JoinTokens__orders__Token"]);
        if (OperatingSystem.IsLinux())
        {
            Assert.NotEmpty(mesh.Resource.Annotations.OfType<ContainerRuntimeArgsCallbackAnnotation>());
        }
    }

    [Fact]
    [Trait("Area", "EndToEnd")]
    public async Task An_AppHost_runs_the_control_service_tool_and_it_becomes_healthy_serving_a_certificate_of_the_development_root()
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        deadline.CancelAfter(TimeSpan.FromSeconds(90));
        var cancellationToken = deadline.Token;

        var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.Smoke_AppHost>([], cancellationToken);
        builder.AddMeshControlPlane("mesh", s => (s.StateDirectory, s.ToolPath) = (_state.Path, BuiltControlPlaneExecutable()));
        await using var app = await builder.BuildAsync(cancellationToken);
        await app.StartAsync(cancellationToken);

        // Healthy = /healthz answered over TLS with a certificate that chains to the AppHost's development root: the tool
        // read the CA paths and the URL from its environment.
        await app.ResourceNotifications.WaitForResourceHealthyAsync("mesh", cancellationToken);
        Assert.True(File.Exists(Path.Combine(_state.Path, "control-plane", "trust-bundle.pem")));
    }
}
#pragma warning restore CS0618
