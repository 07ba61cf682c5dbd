using MeshKit.Hosting;
using MeshKit.Testing;
using MeshKit.Testing.Consul;
using MeshKit.Tests.Identity;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using static MeshKit.Tests.Discovery.ConsulMeshApps;

namespace MeshKit.Tests.Discovery;

/// <summary>
/// Consul is an add-on (MeshKit.Discovery.Consul, <c>builder.AddMeshConsulDiscovery()</c>): <c>AddMesh()</c> works without
/// it, and Consul settings without it stop the host rather than being ignored.
/// </summary>
[Trait("Area", "Discovery")]
public sealed class ConsulAddOnTests(MeshTestBed bed) : IClassFixture<MeshTestBed>
{
    [Fact]
    public void The_data_plane_does_not_depend_on_Consul()
    {
        var references = typeof(MeshOptions).Assembly.GetReferencedAssemblies().Select(a => a.Name).ToList();

        Assert.DoesNotContain("MeshKit.Consul", references);
        Assert.DoesNotContain("MeshKit.Discovery.Consul", references);
    }

    [Trait("Area", "Security")]
    [Theory]
    [InlineData("Mesh:Discovery:Consul:Address", "http://127.0.0.1:8500")]
    [InlineData("Mesh:Discovery:Consul:Tags:0", "canary")]
    public async Task Consul_settings_without_the_add_on_stop_the_host_at_start_naming_the_section_the_package_and_the_call(string key, string value)
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => MeshAppHost.StartAsync(
            bed.ControlPlane, "orders", MeshTestBed.Token, new Dictionary<string, string?> { [key] = value }));

        Assert.Contains($"Mesh:Discovery:Consul is configured ({key} is set)", error.Message, StringComparison.Ordinal);
        Assert.Contains("dotnet add package MeshKit.Discovery.Consul", error.Message, StringComparison.Ordinal);
        Assert.Contains("call builder.AddMeshConsulDiscovery() after builder.AddMesh()", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_same_Consul_settings_with_the_add_on_start_the_host_and_register_it_in_Consul()
    {
        await using var consul = await ConsulDouble.StartAsync();
        await using var orders = await ConsulServiceApp.StartAsync(bed, consul, "orders", "a");

        await Eventually.WaitAsync(() => consul.HasService(orders.ServiceId), Deadline, "orders-a to register");
    }

    [Fact]
    public async Task An_empty_Consul_address_is_no_setting_and_a_host_without_the_add_on_starts()
    {
        await using var orders = await MeshAppHost.StartAsync(
            bed.ControlPlane, "orders", MeshTestBed.Token, new Dictionary<string, string?> { ["Mesh:Discovery:Consul:Address"] = " " });

        Assert.Null(orders.Services.GetService(typeof(MeshKit.Consul.ConsulClient)));
    }

    [Fact]
    public void The_add_on_comes_after_AddMesh_and_adds_itself_once()
    {
        var early = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        var error = Assert.Throws<InvalidOperationException>(() => early.AddMeshConsulDiscovery());
        Assert.Contains("call builder.AddMesh() first, then builder.AddMeshConsulDiscovery()", error.Message, StringComparison.Ordinal);

        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Mesh:Discovery:Consul:Address"] = "http://127.0.0.1:8500" });
        builder.AddMesh().AddMeshConsulDiscovery().AddMeshConsulDiscovery();
        Assert.Single(builder.Services, d => d.ImplementationType == typeof(MeshKit.Discovery.ConsulSelfRegistration));
    }
}
