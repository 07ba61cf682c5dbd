using System.CommandLine;
using System.Globalization;
using MeshKit.Cli.ControlPlane;
using Spectre.Console;

namespace MeshKit.Cli.Canary;

/// <summary>
/// <c>meshctl canary status|promote|abort|pause|resume</c>: the control service's automated canaries (docs/canary.md). An
/// action runs on the leading replica; another replica answers 409 naming it.
/// </summary>
internal static class CanaryCommands
{
    private static readonly (string Name, string Description)[] Actions =
    [
        ("promote", "Send all of the route's traffic to the canary subset now, and end the canary."),
        ("abort", "Send all of the route's traffic back to the stable subset now (one policy push), and end the canary."),
        ("pause", "Stop the analysis of this canary: its weight stays where it is until resumed."),
        ("resume", "Resume a paused canary at its step, or start an ended one over from its first step."),
    ];

    public static Command Create(GlobalOptions options, CliEnvironment environment)
    {
        var canary = new Command("canary", "Automated canaries: the control service moves a route's split on the callers' figures.");

        var status = new Command("status", "Every canary: its phase, weight, failed checks, why it is where it is, and its latest decisions with their figures.");
        status.SetBody(options, environment, async (context, cancellationToken) =>
        {
            using var api = context.CreateApi();
            var list = await api.GetCanariesAsync(cancellationToken).ConfigureAwait(false);
            if (context.Json)
            {
                context.WriteJson(list);
            }
            else
            {
                Render(context.Console, list);
            }

            return ExitCodes.Ok;
        });
        canary.Subcommands.Add(status);

        foreach (var (name, description) in Actions)
        {
            var target = new Argument<string>("canary") { Description = "The canary: <service>/<destination>/<route>, as `meshctl canary status` lists it (frontend/orders/canary)." };
            var command = new Command(name, description) { target };
            command.SetBody(options, environment, async (context, cancellationToken) =>
            {
                var key = context.Value(target) ?? string.Empty;
                if (key.Split('/') is not { Length: 3 } parts || parts.Any(string.IsNullOrWhiteSpace))
                {
                    throw new MeshctlException(ExitCodes.Usage, $"'{key}' is not a canary name; use <service>/<destination>/<route>, for example frontend/orders/canary.");
                }

                using var api = context.CreateApi();
                var state = await api.CanaryActionAsync(key, name, cancellationToken).ConfigureAwait(false);
                if (context.Json)
                {
                    context.WriteJson(state);
                }
                else
                {
                    context.Console.MarkupLine($"{Markup.Escape(state.Key)}: [bold]{Markup.Escape(state.Phase)}[/], {state.Weight} % to '{Markup.Escape(state.CanarySubset)}'. {Markup.Escape(state.Reason)}");
                }

                return ExitCodes.Ok;
            });
            canary.Subcommands.Add(command);
        }

        return canary;
    }

    private static void Render(IAnsiConsole console, CanaryList list)
    {
        if (list.Canaries.Count == 0)
        {
            console.MarkupLine(list.Leader
                ? "No canary: no route in central policy has a Canary section."
                : "This replica does not lead; the leading replica runs the canaries and shows their state (meshctl --control-plane <leader>).");
            return;
        }

        var table = new Table().Border(TableBorder.Rounded).AddColumns("Canary", "Phase", "Weight", "Failed checks", "Why");
        foreach (var canary in list.Canaries)
        {
            table.AddRow(
                Markup.Escape(canary.Key),
                Markup.Escape(canary.Phase),
                $"{canary.Weight} % to {Markup.Escape(canary.CanarySubset)}",
                canary.FailedChecks.ToString(CultureInfo.InvariantCulture),
                Markup.Escape(canary.Reason));
        }

        console.Write(table);
        foreach (var canary in list.Canaries)
        {
            var decisions = new Table().Border(TableBorder.Simple).Title(Markup.Escape(canary.Key)).AddColumns("At (UTC)", "Action", "Weight", "Stable", "Canary", "Reason");
            foreach (var decision in canary.Decisions.TakeLast(10))
            {
                decisions.AddRow(
                    decision.At.UtcDateTime.ToString("HH:mm:ss", CultureInfo.InvariantCulture),
                    Markup.Escape(decision.Action),
                    $"{decision.Weight} %",
                    Figures(decision.Stable),
                    Figures(decision.Canary),
                    Markup.Escape(decision.Reason));
            }

            console.Write(decisions);
        }
    }

    private static string Figures(CanaryFiguresView? figures) =>
        figures is null
            ? "-"
            : Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"{figures.Requests} req, {figures.SuccessRate?.ToString("0.##", CultureInfo.InvariantCulture) ?? "-"} %, p99 {figures.P99Ms?.ToString("0.#", CultureInfo.InvariantCulture) ?? "-"} ms"));
}
