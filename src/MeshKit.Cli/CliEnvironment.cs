using Spectre.Console;

namespace MeshKit.Cli;

/// <summary>
/// What a meshctl run reads and writes: standard output and error, standard input (for confirmations), environment
/// variables and the terminal width. Tests run commands in-process with their own writers and variables.
/// </summary>
internal sealed class CliEnvironment
{
    public required TextWriter Out { get; init; }

    public required TextWriter Error { get; init; }

    public TextReader In { get; init; } = TextReader.Null;

    /// <summary>Gets whether standard input is a terminal a person can answer prompts on.</summary>
    public bool InteractiveInput { get; init; }

    /// <summary>Gets whether standard output is a terminal (colours, detected width).</summary>
    public bool OutputIsTerminal { get; init; }

    /// <summary>Gets the width tables are laid out to when output is not a terminal.</summary>
    public int Width { get; init; } = 160;

    public Func<string, string?> GetVariable { get; init; } = Environment.GetEnvironmentVariable;

    /// <summary>Gets the user's home-relative data folder, where a local control service keeps its trust bundle and admin token.</summary>
    public string? LocalControlPlaneDirectory { get; init; }

    public static CliEnvironment FromProcess()
    {
        var columns = Environment.GetEnvironmentVariable("COLUMNS");
        return new CliEnvironment
        {
            Out = Console.Out,
            Error = Console.Error,
            In = Console.In,
            InteractiveInput = !Console.IsInputRedirected,
            OutputIsTerminal = !Console.IsOutputRedirected,
            Width = int.TryParse(columns, out var width) && width > 20 ? width : 160,
            LocalControlPlaneDirectory = Path.Combine(
                Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData),
                "MeshKit",
                "control-plane"),
        };
    }

    /// <summary>Creates the console tables and text are written to.</summary>
    public IAnsiConsole CreateConsole()
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(Out),
            Ansi = OutputIsTerminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = OutputIsTerminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        if (!OutputIsTerminal)
        {
            console.Profile.Width = Width;
        }

        return console;
    }
}
