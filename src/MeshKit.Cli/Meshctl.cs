using System.CommandLine;
using System.CommandLine.Invocation;
using MeshKit.Cli.Canary;
using MeshKit.Cli.CertificateAuthority;
using MeshKit.Cli.Certificates;
using MeshKit.Cli.Policy;
using MeshKit.Cli.Status;
using MeshKit.Cli.Why;

namespace MeshKit.Cli;

/// <summary>meshctl's command tree, and one run of it: parse, invoke, map failures to exit codes.</summary>
internal static class Meshctl
{
    /// <summary>Runs meshctl with <paramref name="args"/>, writing to the environment's writers, and returns the exit code.</summary>
    public static async Task<int> InvokeAsync(string[] args, CliEnvironment environment, CancellationToken cancellationToken = default)
    {
        var options = new GlobalOptions();
        var root = CreateRoot(options, environment);
        var parse = root.Parse(args);
        if (parse.Action is ParseErrorAction)
        {
            foreach (var error in parse.Errors)
            {
                await environment.Error.WriteLineAsync($"meshctl: {error.Message}").ConfigureAwait(false);
            }

            var command = string.Join(' ', parse.CommandResult.Command is RootCommand ? ["meshctl"] : Path(parse.CommandResult));
            await environment.Error.WriteLineAsync($"Run '{command} --help' for usage.").ConfigureAwait(false);
            return ExitCodes.Usage;
        }

        var invocation = new InvocationConfiguration { Output = environment.Out, Error = environment.Error, EnableDefaultExceptionHandler = false };
        return await parse.InvokeAsync(invocation, cancellationToken).ConfigureAwait(false);
    }

    public static RootCommand CreateRoot(GlobalOptions options, CliEnvironment environment)
    {
        var root = new RootCommand(
            "meshctl: see inside a MeshKit mesh and explain its decisions. Exit codes: 0 ok, 1 findings, 2 usage, "
            + "3 control service unreachable or untrusted, 4 admin token refused, 5 conflict, 6 timed out, 7 declined, 8 unexpected failure.");
        foreach (var option in options.All)
        {
            root.Options.Add(option);
        }

        root.Subcommands.Add(StatusCommand.Create(options, environment));
        root.Subcommands.Add(PolicyCommands.Create(options, environment));
        root.Subcommands.Add(WhyCommand.Create(options, environment));
        root.Subcommands.Add(CertCommands.Create(options, environment));
        root.Subcommands.Add(CaCommands.Create(options, environment));
        root.Subcommands.Add(CanaryCommands.Create(options, environment));
        return root;
    }

    /// <summary>Sets a command's action: runs <paramref name="body"/> and turns meshctl's failures into their exit codes.</summary>
    public static void SetBody(this Command command, GlobalOptions options, CliEnvironment environment, Func<CommandContext, CancellationToken, Task<int>> body)
    {
        command.SetAction(async (parse, cancellationToken) =>
        {
            var context = new CommandContext(environment, options, parse);
            try
            {
                return await body(context, cancellationToken).ConfigureAwait(false);
            }
            catch (MeshctlException ex)
            {
                await environment.Error.WriteLineAsync($"meshctl: {ex.Message}").ConfigureAwait(false);
                return ex.ExitCode;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                await environment.Error.WriteLineAsync("meshctl: cancelled.").ConfigureAwait(false);
                return 130;
            }
#pragma warning disable CA1031 // The last line of defence: an operator gets a message and an exit code, not a stack trace.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                await environment.Error.WriteLineAsync($"meshctl: unexpected {ex.GetType().Name}: {ex.Message}").ConfigureAwait(false);
                if (environment.GetVariable("MESHCTL_DEBUG") is { Length: > 0 })
                {
                    await environment.Error.WriteLineAsync(ex.ToString()).ConfigureAwait(false);
                }

                return ExitCodes.Unexpected;
            }
        });
    }

    private static IEnumerable<string> Path(System.CommandLine.Parsing.CommandResult result)
    {
        var names = new Stack<string>();
        for (var current = result; current is not null; current = current.Parent as System.CommandLine.Parsing.CommandResult)
        {
            names.Push(current.Command is RootCommand ? "meshctl" : current.Command.Name);
        }

        return names;
    }
}
