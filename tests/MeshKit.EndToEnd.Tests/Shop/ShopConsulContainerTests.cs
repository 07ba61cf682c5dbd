using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Aspire.Hosting;
using Aspire.Hosting.Testing;
using MeshKit.EndToEnd.Tests.Aspire;
using Microsoft.Extensions.Configuration;
using Shop.AppHost;

namespace MeshKit.EndToEnd.Tests.Shop;

/// <summary>
/// <c>--Shop:Consul=container</c>: the Shop runs a real Consul agent in a container, with its UI, and its services register
/// there. Where no container runtime answers, the AppHost says so and names the other way (an agent's address).
/// </summary>
[Collection(AppHostCollection.Name)]
[Trait("Area", "EndToEnd")]
public sealed class ShopConsulContainerTests
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(240);

    [Fact]
    public async Task Without_a_container_runtime_the_Shop_refuses_Consul_in_a_container_and_names_the_address_option()
    {
        // The AppHost as a user starts it, with a PATH that holds dotnet and nothing else: no docker, no podman, whatever
        // this machine has.
        var appHost = AppHostAssembly();
        var dotnet = DotnetHost();
        var start = new ProcessStartInfo(dotnet, [appHost, "--Shop:Consul=container"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetDirectoryName(appHost)!,
        };
        start.Environment["PATH"] = Path.GetDirectoryName(dotnet)!;
        start.Environment.Remove("ASPIRE_CONTAINER_RUNTIME");
        start.Environment.Remove("DOTNET_ASPIRE_CONTAINER_RUNTIME");

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var error = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"The AppHost did not exit within 60 s; it should refuse at once. Output: {await output}");
        }

        var said = await error;
        Assert.True(process.ExitCode == 1, $"Exit code {process.ExitCode}; error output: {said}; output: {await output}");
        Assert.Contains("--Shop:Consul=container runs Consul in a container, but no container runtime answers here", said, StringComparison.Ordinal);
        Assert.Contains("'docker' is not on the PATH", said, StringComparison.Ordinal);
        Assert.Contains("--Consul:Address=http://127.0.0.1:8500", said, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", said, StringComparison.Ordinal); // a sentence, not a stack trace
    }

    [Fact]
    public async Task With_a_container_runtime_the_Shop_services_register_in_a_real_Consul_agent()
    {
        var configuration = new ConfigurationBuilder().AddEnvironmentVariables().Build();
        Assert.SkipUnless(ContainerRuntime.IsAvailable(configuration, out var problem), $"No container runtime answers here ({problem}); --Shop:Consul=container needs one.");

        using var deadline = new CancellationTokenSource(StartTimeout);
        var cancellationToken = deadline.Token;
        var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.Shop_AppHost>(
            [.. AspireDashboard.UnsecuredArguments, "--Shop:TrafficGenerator:Enabled=false", "--Shop:Consul=container"],
            (options, _) => AspireDashboard.EnableDashboard(options),
            cancellationToken);
        await using var app = await builder.BuildAsync(cancellationToken);
        await app.StartAsync(cancellationToken);
        await app.ResourceNotifications.WaitForResourceHealthyAsync("consul", cancellationToken);
        await Task.WhenAll(ShopAppFixture.Services.Select(s => app.ResourceNotifications.WaitForResourceHealthyAsync(s, cancellationToken)));

        using var consul = new HttpClient { BaseAddress = app.GetEndpoint("consul", "http") };
        // Every service's mesh endpoint is in the agent's catalog with a passing TTL check: two instances of orders (v1, v2).
        await MeshKit.Testing.Eventually.WaitAsync(
            async () =>
            {
                var orders = await consul.GetFromJsonAsync<JsonElement>("/v1/health/service/orders?passing", cancellationToken);
                var inventory = await consul.GetFromJsonAsync<JsonElement>("/v1/health/service/inventory?passing", cancellationToken);
                var frontend = await consul.GetFromJsonAsync<JsonElement>("/v1/health/service/frontend?passing", cancellationToken);
                return orders.GetArrayLength() == 2 && inventory.GetArrayLength() == 1 && frontend.GetArrayLength() == 1;
            },
            TimeSpan.FromSeconds(30),
            "orders (2), inventory and frontend registered and passing in Consul");

        // The UI is served where the dashboard's link points.
        using var ui = await consul.GetAsync("/ui/", cancellationToken);
        Assert.True(ui.IsSuccessStatusCode, $"GET /ui/ answered {(int)ui.StatusCode}.");
    }

    /// <summary>The dotnet host that runs these tests' runtime (the test runner itself is an app host of its own).</summary>
    private static string DotnetHost()
    {
        var fromCli = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (!string.IsNullOrEmpty(fromCli) && File.Exists(fromCli))
        {
            return fromCli;
        }

        // <root>/shared/Microsoft.NETCore.App/<version>/ -> <root>/dotnet
        var root = Path.GetFullPath(Path.Combine(System.Runtime.InteropServices.RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));
        return Path.Combine(root, OperatingSystem.IsWindows() ? "dotnet.exe" : "dotnet");
    }

    /// <summary>The AppHost's built assembly, in the same configuration as these tests.</summary>
    private static string AppHostAssembly()
    {
        // An AppHost's metadata names its project folder (a project resource's names its .csproj file).
        var projectDirectory = Directory.Exists(Projects.Shop_AppHost.ProjectPath) ? Projects.Shop_AppHost.ProjectPath : Path.GetDirectoryName(Projects.Shop_AppHost.ProjectPath)!;
        // The tests run from tests/MeshKit.EndToEnd.Tests/bin/<configuration>/<framework>/.
        var framework = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var configuration = framework.Parent!.Name;
        var path = Path.Combine(projectDirectory, "bin", configuration, framework.Name, "Shop.AppHost.dll");
        Assert.True(File.Exists(path), $"The Shop AppHost is not built at {path}.");
        return path;
    }
}
