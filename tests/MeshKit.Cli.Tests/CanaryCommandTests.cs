using MeshKit.Testing;

namespace MeshKit.Cli.Tests;

/// <summary><c>meshctl canary</c> against a real control service: status lists the canaries of central policy, and an operator's pause and abort take effect at once.</summary>
[Trait("Area", "Cli")]
[Trait("Area", "Canary")]
public sealed class CanaryCommandTests
{
    private const string Policy = """
        { "Policy": { "Destinations": { "orders": { "Routes": [ { "Name": "canary",
          "Canary": { "StableSubset": "v1", "CanarySubset": "v2", "Steps": [ 10, 50 ], "Interval": "00:00:02" } } ] } } } }
        """;

    [Fact]
    public async Task Status_lists_a_canary_and_pause_and_abort_change_it_at_once()
    {
        await using var bed = await CliBed.StartAsync();
        var applied = await bed.RunAsync("policy", "apply", "frontend", bed.Write("canary.json", Policy));
        Assert.True(applied.ExitCode == 0, applied.ToString());

        // No workload of orders v2 has joined: the canary waits, and says why.
        CliResult status = null!;
        await Eventually.WaitAsync(
            async () =>
            {
                status = await bed.RunAsync("canary", "status", "--json");
                return status.ExitCode == 0 && status.Json.GetProperty("canaries").GetArrayLength() == 1;
            },
            TimeSpan.FromSeconds(10),
            "the canary to be listed");
        var canary = status.Json.GetProperty("canaries")[0];
        Assert.Equal("frontend/orders/canary", canary.GetProperty("key").GetString());
        Assert.Equal("Waiting", canary.GetProperty("phase").GetString());
        Assert.Contains("has no endpoints", canary.GetProperty("reason").GetString(), StringComparison.Ordinal);
        var table = await bed.RunAsync("canary", "status");
        Assert.Contains("frontend/orders/canary", table.Out, StringComparison.Ordinal);

        var paused = await bed.RunAsync("canary", "pause", "frontend/orders/canary", "--json");
        Assert.True(paused.ExitCode == 0, paused.ToString());
        Assert.Equal("Paused", paused.Json.GetProperty("phase").GetString());

        var aborted = await bed.RunAsync("canary", "abort", "frontend/orders/canary");
        Assert.True(aborted.ExitCode == 0, aborted.ToString());
        Assert.Contains("RolledBack", aborted.Out, StringComparison.Ordinal);
        using var admin = bed.ControlPlane.CreateAdminClient();
        var written = await admin.GetStringAsync("v1/policy/frontend", TestContext.Current.CancellationToken);
        Assert.Contains("\"v2\": 0", written, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_malformed_or_unknown_canary_name_is_refused_with_its_reason()
    {
        await using var bed = await CliBed.StartAsync();

        var malformed = await bed.RunAsync("canary", "pause", "frontend/orders");
        var unknown = await bed.RunAsync("canary", "promote", "frontend/orders/nope");

        Assert.Equal(2, malformed.ExitCode);
        Assert.Contains("<service>/<destination>/<route>", malformed.Error, StringComparison.Ordinal);
        Assert.NotEqual(0, unknown.ExitCode);
        Assert.Contains("No canary 'frontend/orders/nope'", unknown.Error, StringComparison.Ordinal);
    }
}
