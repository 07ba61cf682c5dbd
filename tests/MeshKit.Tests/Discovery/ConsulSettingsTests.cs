using MeshKit.Discovery;
using MeshKit.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.ServiceDiscovery;

namespace MeshKit.Tests.Discovery;

/// <summary>How mesh names map to Consul names, and how the Consul settings are read and checked.</summary>
[Trait("Area", "Discovery")]
public sealed class ConsulSettingsTests
{
    [Theory]
    [InlineData("orders", "default", "orders")]
    [InlineData("orders", "payments", "orders.payments")]
    [InlineData("orders.payments", "default", "orders.payments")]
    [InlineData("orders.default", "payments", "orders")]
    public void A_destination_maps_to_its_Consul_service_name_in_the_callers_namespace(string host, string callerNamespace, string expected)
    {
        Assert.True(ConsulServiceNames.TryForDestination(host, callerNamespace, out var name));
        Assert.Equal(expected, name);
        Assert.Equal(expected, ConsulServiceNames.ForService(host.Split('.')[0], host.Contains('.', StringComparison.Ordinal) ? host.Split('.')[1] : callerNamespace));
    }

    [Theory]
    [InlineData("api.github.com")]
    [InlineData("Orders")]
    [InlineData("orders_v2")]
    [InlineData("control.mesh-system")]
    public void A_host_that_is_not_a_mesh_destination_is_not_looked_up_in_Consul(string host)
    {
        Assert.False(ConsulServiceNames.TryForDestination(host, "default", out _));
    }

    [Fact]
    public void Registration_settings_bind_from_the_Consul_section()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Mesh:Discovery:Consul:Tags:0"] = "canary",
            ["Mesh:Discovery:Consul:Ttl"] = "00:00:30",
            ["Mesh:Discovery:Consul:DrainTimeout"] = "00:00:20",
            ["Mesh:Discovery:Consul:Register"] = "false",
        }).Build();
        var options = new ConsulRegistrationOptions();
        configuration.GetSection("Mesh:Discovery:Consul").Bind(options);

        Assert.Equal(["canary"], options.Tags);
        Assert.Equal(TimeSpan.FromSeconds(30), options.Ttl);
        Assert.Equal(TimeSpan.FromSeconds(20), options.DrainTimeout);
        Assert.False(options.Register);
        Assert.Equal(TimeSpan.FromMinutes(1), options.DeregisterCriticalServiceAfter);
    }

    [Fact]
    public void Bad_registration_settings_fail_with_errors_that_name_the_full_key()
    {
        var options = new ConsulRegistrationOptions
        {
            Ttl = TimeSpan.Zero,
            DeregisterCriticalServiceAfter = TimeSpan.FromSeconds(30),
            HealthCheckInterval = TimeSpan.FromMilliseconds(10),
            DrainTimeout = TimeSpan.FromSeconds(-1),
        };
        options.Tags.Add(" ");

        var result = new ConsulRegistrationOptionsValidator().Validate(null, options);

        Assert.True(result.Failed);
        var failures = string.Join("\n", result.Failures);
        Assert.Contains("Mesh:Discovery:Consul:Ttl is 00:00:00; use a value from 00:00:01 to 01:00:00.", failures, StringComparison.Ordinal);
        Assert.Contains("Mesh:Discovery:Consul:DeregisterCriticalServiceAfter is 00:00:30; use a value from 00:01:00 (Consul's minimum)", failures, StringComparison.Ordinal);
        Assert.Contains("Mesh:Discovery:Consul:HealthCheckInterval is", failures, StringComparison.Ordinal);
        Assert.Contains("Mesh:Discovery:Consul:DrainTimeout is", failures, StringComparison.Ordinal);
        Assert.Contains("Mesh:Discovery:Consul:Tags:0", failures, StringComparison.Ordinal);
    }

    [Fact]
    public void With_the_add_on_Consul_is_on_only_when_its_address_is_set_and_then_the_shutdown_timeout_covers_the_drain()
    {
        var without = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        without.AddMesh().AddMeshConsulDiscovery();
        Assert.DoesNotContain(without.Services, d => d.ServiceType == typeof(ConsulEndpointProviderFactory));
        Assert.DoesNotContain(without.Services, d => d.ImplementationType == typeof(ConsulSelfRegistration));

        var with = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        with.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Mesh:Discovery:Consul:Address"] = "http://127.0.0.1:8500",
            ["Mesh:Discovery:Consul:DrainTimeout"] = "00:01:00",
            ["Mesh:Service:Name"] = "orders",
            ["Mesh:ControlPlane:Address"] = "https://127.0.0.1:7443",
            ["Mesh:ControlPlane:TrustBundlePath"] = "trust-bundle.pem",
        });
        with.AddMesh().AddMeshConsulDiscovery();
        Assert.Contains(with.Services, d => d.ImplementationType == typeof(ConsulSelfRegistration));
        using var services = with.Services.BuildServiceProvider();
        Assert.Contains(services.GetServices<IMeshServiceEndpointProviderFactory>(), f => f is ConsulEndpointProviderFactory);
        Assert.Contains(services.GetServices<IServiceEndpointProviderFactory>(), f => f is ConsulEndpointProviderFactory);
        Assert.True(services.GetRequiredService<IOptions<HostOptions>>().Value.ShutdownTimeout >= TimeSpan.FromSeconds(80));
    }
}
