using MeshKit.ControlChannel;
using MeshKit.Testing;
using MeshKit.Testing.Consul;
using MeshKit.Tests.Discovery;
using MeshKit.Tests.Identity;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace MeshKit.Tests.ControlChannel;

/// <summary>
/// How a workload is told where the control service's replicas are: <c>Mesh:ControlPlane:Address</c>, a list in
/// <c>Mesh:ControlPlane:Addresses</c>, or a Consul service (<c>Mesh:ControlPlane:ConsulService</c>, an add-on's job). Bad
/// values stop the host with errors that name their keys.
/// </summary>
[Trait("Area", "ControlPlaneHA")]
public sealed class ControlPlaneAddressSettingsTests(MeshTestBed bed) : IClassFixture<MeshTestBed>
{
    [Theory]
    [InlineData("Mesh:ControlPlane:Addresses:1", "http://127.0.0.1:7444", "Mesh:ControlPlane:Addresses:1 'http://127.0.0.1:7444/' must be an absolute https:// address")]
    [InlineData("Mesh:ControlPlane:Addresses:1", "control-2:7444", "Mesh:ControlPlane:Addresses:1 'control-2:7444' must be an absolute https:// address")]
    [InlineData("Mesh:ControlPlane:Addresses:1", "https://user:secret@127.0.0.1:7444", "Mesh:ControlPlane:Addresses:1 carries user information")]
    [InlineData("Mesh:ControlPlane:Addresses:1", "", "Mesh:ControlPlane:Addresses:1 is empty")]
    [InlineData("Mesh:ControlPlane:Address", "https://127.0.0.1:7443;https://127.0.0.1:7444", "at 'Mesh:ControlPlane:Address' to type 'System.Uri'")]
    [InlineData("Mesh:ControlPlane:ConsulService", "Mesh_Control", "Mesh:ControlPlane:ConsulService 'Mesh_Control'")]
    [InlineData("Mesh:ControlPlane:FailoverTimeout", "00:00:00", "Mesh:ControlPlane:FailoverTimeout is 00:00:00")]
    public async Task A_bad_control_service_address_list_stops_the_host_with_an_error_naming_the_key(string key, string value, string expected)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Mesh:ControlPlane:Addresses:0"] = "https://127.0.0.1:7443",
            [key] = value,
        };
        var error = await Assert.ThrowsAnyAsync<Exception>(() => MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token, settings, meshEndpoint: false));
        Assert.Contains(expected, error.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("secret", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_an_address_or_a_Consul_service_the_host_does_not_start_and_the_error_names_all_three_settings()
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token,
            new Dictionary<string, string?> { ["Mesh:ControlPlane:Address"] = string.Empty }, meshEndpoint: false));
        Assert.Contains("Mesh:ControlPlane:Address is missing", error.Message, StringComparison.Ordinal);
        Assert.Contains("Mesh:ControlPlane:Addresses:0", error.Message, StringComparison.Ordinal);
        Assert.Contains("Mesh:ControlPlane:ConsulService", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Address_and_Addresses_make_one_list_in_order_each_replica_once_as_a_base_address()
    {
        var options = Bind(new Dictionary<string, string?>
        {
            ["Mesh:ControlPlane:Address"] = "https://10.0.0.1:7443",
            ["Mesh:ControlPlane:Addresses:0"] = "https://10.0.0.2:7443/",
            ["Mesh:ControlPlane:Addresses:1"] = "https://10.0.0.1:7443/",
            ["Mesh:ControlPlane:Addresses:2"] = "https://lb.internal/control",
        });
        Assert.Equal(
            ["https://10.0.0.1:7443/", "https://10.0.0.2:7443/", "https://lb.internal/control/"],
            new ConfiguredControlPlaneAddresses(Options.Create(options)).Current.Select(u => u.ToString()));
    }

    [Fact]
    public async Task A_Consul_service_without_the_Consul_add_on_stops_the_host_before_it_asks_for_a_certificate()
    {
        var settings = new Dictionary<string, string?>
        {
            ["Mesh:ControlPlane:Address"] = string.Empty,
            ["Mesh:ControlPlane:ConsulService"] = "mesh-control",
        };
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token, settings, meshEndpoint: false));
        Assert.Contains("Mesh:ControlPlane:ConsulService", error.Message, StringComparison.Ordinal);
        Assert.Contains("MeshKit.Discovery.Consul", error.Message, StringComparison.Ordinal);
        Assert.Contains("builder.AddMeshConsulDiscovery()", error.Message, StringComparison.Ordinal);

        // The add-on added, but off (no Consul address): the same, naming the setting that is missing.
        error = await Assert.ThrowsAsync<InvalidOperationException>(() => MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token, settings, meshEndpoint: false,
            addOns: ConsulMeshApps.AddConsul));
        Assert.Contains("Mesh:Discovery:Consul:Address", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_a_Consul_service_the_first_certificate_comes_from_a_replica_Consul_lists_and_a_Consul_outage_keeps_the_list()
    {
        await using var consul = await ConsulDouble.StartAsync();
        await using var replica = await ControlPlaneHost.StartAsync(ReplicaSet.Settings(consul));

        // No address anywhere but in Consul: the bootstrap waits for Consul's first answer.
        await using var orders = await MeshAppHost.StartAsync(replica, "orders", MeshTestBed.Token, ConsulMeshApps.Settings(consul, "orders-1", new Dictionary<string, string?>
            {
                ["Mesh:ControlPlane:Address"] = string.Empty,
                ["Mesh:ControlPlane:ConsulService"] = ReplicaSet.ConsulService,
            }),
            meshEndpoint: false, addOns: ConsulMeshApps.AddConsul);
        var client = orders.Services.GetRequiredService<ControlPlaneClient>();
        Assert.Equal(replica.BaseAddress, client.CurrentReplica);

        // Consul goes away: the workload keeps the replica it knew, and keeps renewing there.
        await consul.StopAsync();
        var addresses = orders.Services.GetRequiredService<IControlPlaneAddresses>();
        var identity = orders.Services.GetRequiredService<MeshKit.Identity.WorkloadIdentitySource>();
        var serial = identity.Current!.SerialNumber;
        await Eventually.WaitAsync(() => identity.Current!.SerialNumber != serial, TimeSpan.FromSeconds(6), "a renewal while Consul is down");
        Assert.Equal([replica.BaseAddress], addresses.Current);
        Assert.Contains("unreachable", addresses.Describe(), StringComparison.Ordinal);
    }

    private static MeshOptions Bind(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var options = new MeshOptions();
        configuration.GetSection(MeshOptions.SectionName).Bind(options);
        return options;
    }
}
