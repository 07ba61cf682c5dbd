using MeshKit.Testing;

namespace MeshKit.Cli.Tests;

[Trait("Area", "Cli")]
public sealed class PolicyCheckTests : IDisposable
{
    private readonly TempDirectory _files = new("cli-check");

    [Fact]
    public async Task A_valid_appsettings_file_passes_with_its_version_routes_and_rules()
    {
        var file = Write("appsettings.json", """
            {
              // Comments are allowed, as in any appsettings file.
              "Logging": { "LogLevel": { "Default": "Information" } },
              "Mesh": {
                "Policy": { "Destinations": { "orders": { "Routes": [ { "Name": "canary", "Match": { "Path": "/api" }, "Split": { "v1": 90, "v2": 10 } } ] } } },
                "Authorization": { "DefaultAction": "Deny", "Rules": [ { "Name": "frontend-reads", "From": { "Services": [ "frontend" ] } } ] }
              }
            }
            """);

        var result = await Cli.RunAsync("policy", "check", file, "--json");

        Assert.True(result.ExitCode == 0, result.ToString());
        var json = result.Json;
        Assert.True(json.GetProperty("valid").GetBoolean());
        Assert.Equal("appsettings", json.GetProperty("kind").GetString());
        Assert.False(string.IsNullOrEmpty(json.GetProperty("version").GetString()));
        Assert.Equal("canary", json.GetProperty("destinations")[0].GetProperty("routes")[0].GetString());
        Assert.Equal("frontend-reads", json.GetProperty("authorization").GetProperty("rules")[0].GetString());
    }

    [Fact]
    public async Task Every_error_names_its_configuration_path_and_the_exit_code_is_1()
    {
        var file = Write("bad.json", """
            { "Policy": { "Destinations": { "orders": { "Timeout": "soon", "Retyr": 1, "Routes": [ { "Split": { "v1": "ten" } } ] } } },
              "Authorization": { "Rules": [ { "Action": "Maybe" } ] } }
            """);

        var json = await Cli.RunAsync("policy", "check", file, "--json");
        var table = await Cli.RunAsync("policy", "check", file);

        Assert.Equal(1, json.ExitCode);
        Assert.Equal(1, table.ExitCode);
        var paths = json.Json.GetProperty("errors").EnumerateArray().Select(e => e.GetProperty("path").GetString()).ToList();
        Assert.Contains("Policy:Destinations:orders:Timeout", paths);
        Assert.Contains("Policy:Destinations:orders:Retyr", paths);
        Assert.Contains("Policy:Destinations:orders:Routes:0:Split:v1", paths);
        Assert.Contains("Authorization:Rules:0:Action", paths);
        Assert.Contains("Policy:Destinations:orders:Routes:0:Split:v1", table.Out, StringComparison.Ordinal);
        Assert.Contains("not valid", table.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_file_that_is_not_JSON_is_one_error_and_a_missing_file_is_a_usage_error()
    {
        var broken = Write("broken.json", "{ \"Mesh\": ");

        var invalid = await Cli.RunAsync("policy", "check", broken, "--json");
        var missing = await Cli.RunAsync("policy", "check", Path.Combine(_files.Path, "nope.json"));

        Assert.Equal(1, invalid.ExitCode);
        Assert.Equal("(document)", invalid.Json.GetProperty("errors")[0].GetProperty("path").GetString());
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("nope.json", missing.Error, StringComparison.Ordinal);
    }

    public void Dispose() => _files.Dispose();

    private string Write(string name, string text)
    {
        var path = Path.Combine(_files.Path, name);
        File.WriteAllText(path, text);
        return path;
    }
}
