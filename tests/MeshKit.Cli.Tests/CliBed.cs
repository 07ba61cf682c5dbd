using System.Text.Json;
using MeshKit.Testing;

namespace MeshKit.Cli.Tests;

/// <summary>What one meshctl run wrote and returned.</summary>
public sealed record CliResult(int ExitCode, string Out, string Error)
{
    public JsonElement Json => JsonDocument.Parse(Out).RootElement;

    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{Out}\n--- stderr ---\n{Error}";
}

/// <summary>Runs meshctl in-process with captured output and an environment of its own (never the machine's).</summary>
public static class Cli
{
    public static Task<CliResult> RunAsync(params string[] args) => RunAsync(null, null, args);

    public static async Task<CliResult> RunAsync(IReadOnlyDictionary<string, string>? variables, string? input, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var environment = new CliEnvironment
        {
            Out = output,
            Error = error,
            In = new StringReader(input ?? string.Empty),
            InteractiveInput = input is not null,
            Width = 200,
            GetVariable = name => variables is not null && variables.TryGetValue(name, out var value) ? value : null,
            LocalControlPlaneDirectory = null,
        };
        var code = await Meshctl.InvokeAsync(args, environment, TestContext.Current.CancellationToken);
        return new CliResult(code, output.ToString(), error.ToString());
    }
}

/// <summary>
/// A control service for one test (so no test sees another's workloads or central policy), a join token for the services
/// the tests run, a folder for files, and meshctl runs pointed at it.
/// </summary>
public sealed class CliBed : IAsyncDisposable
{
    public const string JoinToken = "cli-tests-join-token-0123456789";

    private CliBed(ControlPlaneHost controlPlane, TempDirectory files)
    {
        ControlPlane = controlPlane;
        Files = files;
    }

    public ControlPlaneHost ControlPlane { get; }

    public TempDirectory Files { get; }

    /// <summary>Gets the variables a run sees: the admin token comes from $MESHCTL_ADMIN_TOKEN, as an operator would set it.</summary>
    public Dictionary<string, string> Variables { get; } = new() { ["MESHCTL_ADMIN_TOKEN"] = ControlPlaneHost.AdminToken };

    public static async Task<CliBed> StartAsync(string certificateLifetime = "01:00:00")
    {
        var settings = new Dictionary<string, string?>
        {
            ["ControlPlane:JoinTokens:tests:Token"] = JoinToken,
            ["ControlPlane:CertificateLifetime"] = certificateLifetime,
        };
        string[] services = ["frontend", "orders", "inventory"];
        for (var i = 0; i < services.Length; i++)
        {
            settings[$"ControlPlane:JoinTokens:tests:Services:{i}"] = services[i];
        }

        return new CliBed(await ControlPlaneHost.StartAsync(settings), new TempDirectory("cli"));
    }

    /// <summary>The options that point meshctl at this control service.</summary>
    public string[] Connection => ["--control-plane", ControlPlane.BaseAddress.ToString(), "--trust-bundle", ControlPlane.TrustBundlePath];

    /// <summary>Runs meshctl against this control service.</summary>
    public Task<CliResult> RunAsync(params string[] args) => Cli.RunAsync(Variables, null, [.. args, .. Connection]);

    /// <summary>Writes a file in the bed's folder and returns its path.</summary>
    public string Write(string name, string content)
    {
        var path = Path.Combine(Files.Path, name);
        File.WriteAllText(path, content);
        return path;
    }

    public async ValueTask DisposeAsync()
    {
        await ControlPlane.DisposeAsync();
        Files.Dispose();
    }
}
