using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using MeshKit.Cli.ControlPlane;
using Spectre.Console;

namespace MeshKit.Cli;

/// <summary>What a command's body works with: the parsed options, the output, and the control service.</summary>
internal sealed class CommandContext(CliEnvironment environment, GlobalOptions options, ParseResult parse)
{
    public static readonly JsonSerializerOptions JsonOutput = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,

        // Output for people and scripts, never embedded in HTML: keep apostrophes and '<' readable.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    private IAnsiConsole? _console;
    private ControlPlaneSettings? _controlPlane;

    public CliEnvironment Environment => environment;

    public ParseResult Parse => parse;

    public bool Json => parse.GetValue(options.Json);

    /// <summary>Gets the console tables and text go to (standard output).</summary>
    public IAnsiConsole Console => _console ??= environment.CreateConsole();

    public TextWriter Error => environment.Error;

    public ControlPlaneSettings ControlPlane => _controlPlane ??= ControlPlaneSettings.Resolve(options, parse, environment);

    public ControlPlaneApi CreateApi(TimeSpan? timeout = null) => new(ControlPlane, timeout);

    public T? Value<T>(Option<T> option) => parse.GetValue(option);

    public T? Value<T>(Argument<T> argument) => parse.GetValue(argument);

    public void WriteJson<T>(T value)
    {
        environment.Out.WriteLine(JsonSerializer.Serialize(value, JsonOutput));
        environment.Out.Flush();
    }

    /// <summary>Writes a warning to standard error, so it never mixes with JSON output.</summary>
    public void Warn(string message) => environment.Error.WriteLine($"warning: {message}");

    /// <summary>Writes a progress line: to the console for tables, to standard error with <c>--json</c>.</summary>
    public void Progress(string message)
    {
        if (Json)
        {
            environment.Error.WriteLine(message);
        }
        else
        {
            Console.MarkupLine(Markup.Escape(message));
        }
    }

    /// <summary>Asks a yes/no question on standard input; without a person to ask, fails with a usage error that names <c>--yes</c>.</summary>
    public bool Confirm(string question)
    {
        if (!environment.InteractiveInput)
        {
            throw new MeshctlException(ExitCodes.Usage, $"{question} needs confirmation, and standard input is not a terminal: add --yes to proceed without prompts.");
        }

        environment.Error.Write($"{question} [y/N] ");
        environment.Error.Flush();
        var answer = environment.In.ReadLine()?.Trim();
        return answer is not null && (answer.Equals("y", StringComparison.OrdinalIgnoreCase) || answer.Equals("yes", StringComparison.OrdinalIgnoreCase));
    }
}
