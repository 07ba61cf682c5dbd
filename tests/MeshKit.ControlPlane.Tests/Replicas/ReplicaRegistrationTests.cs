using System.Net.Http.Json;
using System.Text.Json;
using MeshKit.ControlPlane.Replicas;
using MeshKit.Testing;
using MeshKit.Testing.Consul;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace MeshKit.ControlPlane.Tests.Replicas;

/// <summary>
/// Each control-service replica that shares Consul registers itself there as <c>mesh-control</c>, so workloads can find
/// every replica by name; it leaves on a graceful stop, and Consul reaps it after a crash.
/// </summary>
[Trait("Area", "ControlPlaneHA")]
public sealed class ReplicaRegistrationTests
{
    private const string HealthPath = "v1/health/service/mesh-control?passing";

    [Fact]
    public async Task Each_replica_registers_as_mesh_control_with_its_address_and_identity_and_leaves_Consul_on_a_graceful_stop()
    {
        await using var consul = await ConsulDouble.StartAsync();
        await using var first = await ControlPlaneHost.StartAsync(Shared(consul));
        await using var second = await ControlPlaneHost.StartAsync(Shared(consul));

        var entries = await PassingAsync(consul, 2);
        foreach (var replica in new[] { first, second })
        {
            var entry = entries.Single(e => e.GetProperty("Service").GetProperty("Port").GetInt32() == replica.BaseAddress.Port);
            var service = entry.GetProperty("Service");
            Assert.Equal("mesh-control", service.GetProperty("Service").GetString());
            Assert.Equal("127.0.0.1", service.GetProperty("Address").GetString());
            Assert.Equal(["meshkit", "mesh-system"], service.GetProperty("Tags").EnumerateArray().Select(t => t.GetString()));
            var meta = service.GetProperty("Meta");
            Assert.Equal($"spiffe://{ControlPlaneHost.TrustDomain}/ns/mesh-system/svc/control-plane", meta.GetProperty("spiffe-id").GetString());
            Assert.Equal(replica.BaseAddress.ToString(), meta.GetProperty("address").GetString());
            Assert.Equal(ControlPlaneHost.TrustDomain, meta.GetProperty("trust-domain").GetString());

            // Kept passing by a TTL check; reaped a minute after it turns critical (a crash: no deregistration).
            var check = Registration(replica).Check!;
            Assert.Equal(TimeSpan.FromSeconds(10), check.Ttl);
            Assert.Equal(TimeSpan.FromMinutes(1), check.DeregisterCriticalServiceAfter);
        }

        // A graceful stop deregisters before the server stops: gone from ?passing, and from the agent, when the stop returns.
        var id = Registration(second).Id;
        await second.StopAsync();
        Assert.False(consul.HasService(id));
        var left = await GetPassingAsync(consul);
        Assert.Equal([first.BaseAddress.Port], left.Select(e => e.GetProperty("Service").GetProperty("Port").GetInt32()));

        // Back again, it registers again.
        await second.StartAsync();
        await PassingAsync(consul, 2);
    }

    [Fact]
    public async Task A_replica_registers_its_AdvertiseAddress_and_a_replica_without_shared_Consul_registers_nothing()
    {
        await using var consul = await ConsulDouble.StartAsync();
        var settings = Shared(consul);
        settings["ControlPlane:AdvertiseAddress"] = "10.1.2.3";
        settings["ControlPlane:Registration:ServiceName"] = "control-east";
        await using var advertised = await ControlPlaneHost.StartAsync(settings);
        await Eventually.WaitAsync(() => consul.HasService(Registration(advertised).Id), TimeSpan.FromSeconds(5), "the registration");
        using var http = new HttpClient { BaseAddress = consul.Address };
        var entry = (await http.GetFromJsonAsync<JsonElement[]>("v1/health/service/control-east?passing", TestContext.Current.CancellationToken))!.Single();
        Assert.Equal("10.1.2.3", entry.GetProperty("Service").GetProperty("Address").GetString());
        Assert.Equal($"https://10.1.2.3:{advertised.BaseAddress.Port}/", entry.GetProperty("Service").GetProperty("Meta").GetProperty("address").GetString());

        await using var alone = await ControlPlaneHost.StartAsync();
        Assert.Null(alone.Services.GetServices<IHostedService>().OfType<ReplicaRegistration>().Single().Registration);
    }

    [Theory]
    [InlineData("ControlPlane:Registration:ServiceName", "Mesh_Control", "ControlPlane:Registration:ServiceName 'Mesh_Control'")]
    [InlineData("ControlPlane:Registration:Ttl", "00:00:00.500", "ControlPlane:Registration:Ttl is 00:00:00.5")]
    [InlineData("ControlPlane:Registration:DeregisterCriticalServiceAfter", "00:00:30", "ControlPlane:Registration:DeregisterCriticalServiceAfter is 00:00:30")]
    [InlineData("ControlPlane:AdvertiseAddress", "https://10.0.0.5:7443", "ControlPlane:AdvertiseAddress 'https://10.0.0.5:7443'")]
    [InlineData("ControlPlane:AdvertiseAddress", "0.0.0.0", "ControlPlane:AdvertiseAddress '0.0.0.0'")]
    public async Task Bad_registration_settings_stop_the_control_service_with_an_error_naming_the_key(string key, string value, string expected)
    {
        await using var consul = await ConsulDouble.StartAsync();
        var settings = Shared(consul);
        settings[key] = value;
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => ControlPlaneHost.StartAsync(settings));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    private static Dictionary<string, string?> Shared(ConsulDouble consul) => new()
    {
        ["ControlPlane:Consul:Address"] = consul.Address.ToString(),
        ["ControlPlane:Consul:Wait"] = "00:00:01",
    };

    private static MeshKit.Consul.ConsulServiceRegistration Registration(ControlPlaneHost replica) =>
        replica.Services.GetServices<IHostedService>().OfType<ReplicaRegistration>().Single().Registration!;

    private static async Task<JsonElement[]> PassingAsync(ConsulDouble consul, int count)
    {
        JsonElement[] entries = [];
        await Eventually.WaitAsync(async () => (entries = await GetPassingAsync(consul)).Length == count, TimeSpan.FromSeconds(5), $"{count} passing replicas in Consul");
        return entries;
    }

    private static async Task<JsonElement[]> GetPassingAsync(ConsulDouble consul)
    {
        using var http = new HttpClient { BaseAddress = consul.Address };
        return (await http.GetFromJsonAsync<JsonElement[]>(HealthPath, TestContext.Current.CancellationToken))!;
    }
}
