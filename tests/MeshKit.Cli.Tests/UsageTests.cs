namespace MeshKit.Cli.Tests;

[Trait("Area", "Cli")]
public sealed class UsageTests
{
    public static TheoryData<string> Commands => new()
    {
        "status", "policy check", "policy diff", "policy apply", "why", "cert inspect", "ca roots", "ca rotate",
        "ca root", "ca intermediate", "ca reload", "ca replicas",
    };

    [Theory]
    [MemberData(nameof(Commands))]
    public async Task Every_command_has_help(string command)
    {
        var result = await Cli.RunAsync([.. command.Split(' '), "--help"]);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("Usage:", result.Out, StringComparison.Ordinal);
        Assert.Contains("--json", result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_options_and_missing_arguments_exit_2_with_a_pointer_to_help()
    {
        var unknown = await Cli.RunAsync("status", "--bogus");
        var missing = await Cli.RunAsync("why", "--from", "frontend");
        var noCommand = await Cli.RunAsync("policy");

        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("--bogus", unknown.Error, StringComparison.Ordinal);
        Assert.Contains("meshctl status --help", unknown.Error, StringComparison.Ordinal);
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("--to", missing.Error, StringComparison.Ordinal);
        Assert.Equal(2, noCommand.ExitCode);
    }

    [Fact]
    public async Task Without_a_trust_bundle_or_a_token_meshctl_says_what_to_give_and_exits_2()
    {
        var noBundle = await Cli.RunAsync("status", "--control-plane", "https://127.0.0.1:9");

        Assert.Equal(2, noBundle.ExitCode);
        Assert.Contains("--trust-bundle", noBundle.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_control_service_that_is_not_there_exits_3()
    {
        await using var bed = await CliBed.StartAsync();
        var bundle = bed.ControlPlane.TrustBundlePath;
        await bed.ControlPlane.StopAsync();

        var result = await Cli.RunAsync(bed.Variables, null, "status", "--control-plane", bed.ControlPlane.BaseAddress.ToString(), "--trust-bundle", bundle);

        Assert.Equal(3, result.ExitCode);
        Assert.Contains("could not be reached", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_wrong_admin_token_exits_4_and_no_token_is_ever_printed()
    {
        await using var bed = await CliBed.StartAsync();
        const string Wrong = "wrong-token-that-must-never-be-printed";

        var refused = await Cli.RunAsync(null, null, ["status", "--admin-token", Wrong, .. bed.Connection]);
        var accepted = await bed.RunAsync("status", "--json");

        Assert.Equal(4, refused.ExitCode);
        Assert.Contains("--admin-token", refused.Error, StringComparison.Ordinal);
        Assert.DoesNotContain(Wrong, refused.Out + refused.Error, StringComparison.Ordinal);
        Assert.True(accepted.ExitCode == 0, accepted.ToString());
        Assert.DoesNotContain(Testing.ControlPlaneHost.AdminToken, accepted.Out + accepted.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_control_service_whose_certificate_the_bundle_does_not_trust_exits_3()
    {
        await using var bed = await CliBed.StartAsync();
        await using var other = await CliBed.StartAsync();

        var result = await Cli.RunAsync(bed.Variables, null, "status", "--control-plane", bed.ControlPlane.BaseAddress.ToString(), "--trust-bundle", other.ControlPlane.TrustBundlePath);

        Assert.Equal(3, result.ExitCode);
        Assert.Contains("not trusted", result.Error, StringComparison.Ordinal);
    }
}
