namespace MeshKit.Cli.Tests;

[Trait("Area", "Cli")]
public sealed class PolicyAdminTests
{
    private const string Canary = """
        { "Policy": { "Destinations": { "orders": { "Routes": [ { "Name": "canary", "Split": { "v1": 90, "v2": 10 } } ] } } } }
        """;

    private const string Half = """
        { "Policy": { "Destinations": { "orders": { "Routes": [ { "Name": "canary", "Split": { "v1": 50, "v2": 50 } } ] } } } }
        """;

    [Fact]
    public async Task Diff_shows_each_change_by_path_and_stores_nothing()
    {
        await using var bed = await CliBed.StartAsync();
        Assert.Equal(0, (await bed.RunAsync("policy", "apply", "frontend", bed.Write("canary.json", Canary))).ExitCode);

        var diff = await bed.RunAsync("policy", "diff", "frontend", bed.Write("half.json", Half), "--json");
        var table = await bed.RunAsync("policy", "diff", "frontend", bed.Write("half.json", Half));
        var again = await bed.RunAsync("policy", "diff", "frontend", bed.Write("half.json", Half), "--json");

        Assert.True(diff.ExitCode == 0, diff.ToString());
        var changes = diff.Json.GetProperty("changes").EnumerateArray()
            .Select(c => (c.GetProperty("op").GetString(), c.GetProperty("path").GetString(), c.GetProperty("old").GetString(), c.GetProperty("new").GetString()))
            .ToList();
        Assert.Contains(("change", "Policy:Destinations:orders:Routes:0:Split:v1", "90", "50"), changes);
        Assert.Contains(("change", "Policy:Destinations:orders:Routes:0:Split:v2", "10", "50"), changes);
        Assert.Contains("Policy:Destinations:orders:Routes:0:Split:v1", table.Out, StringComparison.Ordinal);
        Assert.Equal(diff.Json.GetProperty("currentVersion").GetString(), again.Json.GetProperty("currentVersion").GetString());
    }

    [Fact]
    public async Task Apply_sends_the_version_it_read_as_If_Match_and_a_stale_If_Match_is_refused_with_exit_5()
    {
        await using var bed = await CliBed.StartAsync();
        var first = await bed.RunAsync("policy", "apply", "frontend", bed.Write("canary.json", Canary), "--json");
        Assert.True(first.ExitCode == 0, first.ToString());
        var firstVersion = first.Json.GetProperty("version").GetString()!;

        var second = await bed.RunAsync("policy", "apply", "frontend", bed.Write("half.json", Half), "--json");
        Assert.True(second.ExitCode == 0, second.ToString());
        Assert.Equal(firstVersion, second.Json.GetProperty("ifMatch").GetString());
        Assert.Contains(second.Json.GetProperty("changes").EnumerateArray(), c => c.GetProperty("path").GetString() == "Policy:Destinations:orders:Routes:0:Split:v2");

        // Someone else's write came in between: the version this operator read no longer holds.
        var stale = await bed.RunAsync("policy", "apply", "frontend", bed.Write("canary.json", Canary), "--if-match", firstVersion);
        Assert.Equal(5, stale.ExitCode);
        Assert.Contains("nothing was written", stale.Error, StringComparison.Ordinal);

        var forced = await bed.RunAsync("policy", "apply", "frontend", bed.Write("canary.json", Canary), "--force", "--json");
        Assert.True(forced.ExitCode == 0, forced.ToString());
        Assert.Equal(firstVersion, forced.Json.GetProperty("version").GetString());
    }

    [Fact]
    public async Task An_invalid_document_is_refused_with_every_error_path_and_exit_1()
    {
        await using var bed = await CliBed.StartAsync();
        var bad = bed.Write("bad.json", """{ "Policy": { "Destinations": { "orders": { "Timeout": "soon" } } }, "Authorization": { "DefaultAction": "Perhaps" } }""");

        var diff = await bed.RunAsync("policy", "diff", "orders", bad, "--json");
        var apply = await bed.RunAsync("policy", "apply", "orders", bad);
        var appsettings = await bed.RunAsync("policy", "apply", "orders", bed.Write("appsettings.json", """{ "Mesh": { "Policy": { } } }"""), "--json");

        Assert.Equal(1, diff.ExitCode);
        var paths = diff.Json.GetProperty("errors").EnumerateArray().Select(e => e.GetProperty("path").GetString()).ToList();
        Assert.Contains("Policy:Destinations:orders:Timeout", paths);
        Assert.Contains("Authorization:DefaultAction", paths);
        Assert.Equal(1, apply.ExitCode);
        Assert.Contains("Authorization:DefaultAction", apply.Out, StringComparison.Ordinal);
        Assert.Contains("nothing was stored", apply.Out, StringComparison.Ordinal);
        Assert.Equal(1, appsettings.ExitCode);
        Assert.Equal("Mesh", appsettings.Json.GetProperty("errors")[0].GetProperty("path").GetString());
    }
}
