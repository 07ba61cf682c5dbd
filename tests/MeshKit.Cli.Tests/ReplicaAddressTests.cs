using System.Net;
using System.Net.Sockets;

namespace MeshKit.Cli.Tests;

/// <summary>meshctl against several control-service replicas: addresses tried in order, the next when one cannot be reached.</summary>
[Trait("Area", "Cli")]
public sealed class ReplicaAddressTests
{
    [Fact]
    public async Task With_several_addresses_meshctl_moves_past_a_replica_that_cannot_be_reached()
    {
        await using var bed = await CliBed.StartAsync();
        var dead = DeadAddress();

        var result = await Cli.RunAsync(
            bed.Variables,
            null,
            "status", "--json", "--control-plane", $"{dead},{bed.ControlPlane.BaseAddress}", "--trust-bundle", bed.ControlPlane.TrustBundlePath);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(bed.ControlPlane.BaseAddress.ToString(), result.Json.GetProperty("controlPlane").GetString());
    }

    [Fact]
    public async Task When_no_replica_can_be_reached_the_error_names_each_one_tried()
    {
        await using var bed = await CliBed.StartAsync();
        var first = DeadAddress();
        var second = DeadAddress();

        var result = await Cli.RunAsync(
            bed.Variables,
            null,
            "status", "--json", "--control-plane", $"{first},{second}", "--trust-bundle", bed.ControlPlane.TrustBundlePath);

        Assert.Equal(ExitCodes.Unreachable, result.ExitCode);
        Assert.Contains(first.ToString(), result.Error, StringComparison.Ordinal);
        Assert.Contains(second.ToString(), result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_address_in_the_list_that_is_not_https_is_a_usage_error_naming_it()
    {
        var result = await Cli.RunAsync("status", "--control-plane", "https://127.0.0.1:7443,http://10.0.0.2:7443");

        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        Assert.Contains("'http://10.0.0.2:7443'", result.Error, StringComparison.Ordinal);
    }

    /// <summary>An https address on 127.0.0.1 where nothing listens (a port just released).</summary>
    private static Uri DeadAddress()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return new Uri($"https://127.0.0.1:{port}/");
    }
}
