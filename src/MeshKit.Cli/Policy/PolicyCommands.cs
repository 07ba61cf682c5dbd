using System.CommandLine;
using System.Text.Json;
using MeshKit.Cli.ControlPlane;
using MeshKit.Policy;
using Spectre.Console;

namespace MeshKit.Cli.Policy;

/// <summary>A route in <c>policy check</c>'s summary.</summary>
internal sealed record DestinationSummary(string Destination, IReadOnlyList<string> Routes);

/// <summary>The authorization part of <c>policy check</c>'s summary.</summary>
internal sealed record AuthorizationSummary(bool Enabled, string DefaultAction, IReadOnlyList<string> Rules);

/// <summary><c>meshctl policy check --json</c>.</summary>
internal sealed record PolicyCheckReport(
    string File,
    string Kind,
    bool Valid,
    string? Version,
    IReadOnlyList<PolicyErrorView> Errors,
    IReadOnlyList<DestinationSummary> Destinations,
    AuthorizationSummary? Authorization);

/// <summary><c>meshctl policy diff --json</c> and <c>meshctl policy apply --json</c>.</summary>
internal sealed record PolicyChangeReport(
    string Service,
    bool Valid,
    bool Applied,
    string? CurrentVersion,
    string? Version,
    string? IfMatch,
    IReadOnlyList<PolicyChange> Changes,
    IReadOnlyList<PolicyErrorView> Errors)
{
    /// <summary>A document refused before or by the control service: nothing was written.</summary>
    public static PolicyChangeReport Invalid(string service, IReadOnlyList<PolicyErrorView> errors, string? currentVersion = null, string? ifMatch = null) =>
        new(service, false, false, currentVersion, null, ifMatch, [], errors);
}

/// <summary><c>meshctl policy check|diff|apply</c>: the runtime's validator offline, and the control service's policy admin API.</summary>
internal static class PolicyCommands
{
    public static Command Create(GlobalOptions options, CliEnvironment environment)
    {
        var policy = new Command("policy", "Validate traffic policy and authorization, and compare or write central policy on the control service.");
        policy.Subcommands.Add(Check(options, environment));
        policy.Subcommands.Add(Diff(options, environment));
        policy.Subcommands.Add(Apply(options, environment));
        return policy;
    }

    private static Command Check(GlobalOptions options, CliEnvironment environment)
    {
        var file = new Argument<FileInfo>("file") { Description = "An appsettings file (its Mesh:Policy and Mesh:Authorization) or a central policy document ({ \"Policy\": ..., \"Authorization\": ... })." };
        var command = new Command("check", "Validate a policy file with the runtime's own validator, offline. Every error names its configuration path; exit 1 when there is any.") { file };
        command.SetBody(options, environment, (context, _) =>
        {
            var path = context.Value(file)!;
            var text = ReadFile(path);
            var result = PolicyReader.ReadJson(text);
            var kind = LooksLikeAppSettings(text) ? "appsettings" : "policy-document";
            var report = new PolicyCheckReport(
                path.FullName,
                kind,
                result.IsValid,
                result.Snapshot?.Version,
                [.. result.Errors.Select(e => new PolicyErrorView(e.Path, e.Message))],
                result.Snapshot is { } snapshot
                    ? [.. snapshot.Destinations.OrderBy(d => d.Key, StringComparer.Ordinal).Select(d => new DestinationSummary(d.Key, [.. d.Value.Routes.Select(r => r.Name)]))]
                    : [],
                result.Snapshot?.Authorization is { } authorization
                    ? new AuthorizationSummary(authorization.Enabled, authorization.DefaultAction.ToString(), [.. authorization.Rules.Select(r => r.Name)])
                    : null);
            if (context.Json)
            {
                context.WriteJson(report);
            }
            else
            {
                RenderCheck(context.Console, report);
            }

            return Task.FromResult(report.Valid ? ExitCodes.Ok : ExitCodes.Findings);
        });
        return command;
    }

    private static Command Diff(GlobalOptions options, CliEnvironment environment)
    {
        var service = ServiceArgument();
        var file = DocumentArgument();
        var command = new Command("diff", "Show what writing a central policy document would change (the control service validates it with the runtime's validator and stores nothing). Exit 1 when it is not valid.") { service, file };
        command.SetBody(options, environment, async (context, cancellationToken) =>
        {
            var name = context.Value(service)!;
            var json = ReadDocument(context.Value(file)!, out var localErrors);
            if (localErrors.Count > 0)
            {
                return WriteChange(context, PolicyChangeReport.Invalid(name, localErrors));
            }

            using var api = context.CreateApi();
            try
            {
                var diff = await api.DiffPolicyAsync(name, json, cancellationToken).ConfigureAwait(false);
                return WriteChange(context, new PolicyChangeReport(name, true, false, diff.CurrentVersion, diff.Version, null, diff.Changes, []));
            }
            catch (PolicyRejectedException ex)
            {
                return WriteChange(context, PolicyChangeReport.Invalid(name, ex.Errors));
            }
        });
        return command;
    }

    private static Command Apply(GlobalOptions options, CliEnvironment environment)
    {
        var service = ServiceArgument();
        var file = DocumentArgument();
        var ifMatch = new Option<string?>("--if-match")
        {
            Description = "Write only if the stored document still has this version (from 'policy diff' or GET /v1/policy/<service>). Default: the version stored when meshctl reads it just before writing.",
            HelpName = "version",
        };
        var force = new Option<bool>("--force") { Description = "Write without If-Match, overwriting whatever is stored." };
        var command = new Command("apply", "Write a central policy document for a service. The control service validates it first (exit 1 and nothing stored when it is not valid) and pushes it to the service's workloads. Sends If-Match, so a concurrent change is refused (exit 5) rather than overwritten.")
        {
            service,
            file,
            ifMatch,
            force,
        };
        command.SetBody(options, environment, async (context, cancellationToken) =>
        {
            var name = context.Value(service)!;
            var json = ReadDocument(context.Value(file)!, out var localErrors);
            if (localErrors.Count > 0)
            {
                return WriteChange(context, PolicyChangeReport.Invalid(name, localErrors));
            }

            using var api = context.CreateApi();
            var expected = context.Value(ifMatch);
            string? current = null;
            if (!context.Value(force))
            {
                current = (await api.GetPolicyAsync(name, cancellationToken).ConfigureAwait(false))?.Version;
                expected ??= current;
            }
            else if (expected is not null)
            {
                throw new MeshctlException(ExitCodes.Usage, "--force and --if-match contradict each other: --force writes without If-Match.");
            }

            try
            {
                var put = await api.PutPolicyAsync(name, json, expected, cancellationToken).ConfigureAwait(false);
                return WriteChange(context, new PolicyChangeReport(name, true, true, current, put.Version, expected, put.Changes, []));
            }
            catch (PolicyRejectedException ex)
            {
                return WriteChange(context, PolicyChangeReport.Invalid(name, ex.Errors, current, expected));
            }
            catch (MeshctlException ex) when (ex.ExitCode == ExitCodes.Conflict)
            {
                throw new MeshctlException(ExitCodes.Conflict, $"The policy of '{name}' changed since version {expected} was read; nothing was written. Run 'meshctl policy diff {name} <file>' to see the current state. ({ex.Message})");
            }
        });
        return command;
    }

    private static Argument<string> ServiceArgument() =>
        new("service") { Description = "The service key the document is stored under: the service name, or name.namespace outside the default namespace." };

    private static Argument<FileInfo> DocumentArgument() =>
        new("file") { Description = "A central policy document: { \"Policy\": { ... }, \"Authorization\": { ... } }." };

    private static int WriteChange(CommandContext context, PolicyChangeReport report)
    {
        if (context.Json)
        {
            context.WriteJson(report);
        }
        else if (!report.Valid)
        {
            RenderErrors(context.Console, $"The policy for '{report.Service}' is not valid; nothing was stored.", report.Errors);
        }
        else
        {
            var console = context.Console;
            var verb = report.Applied ? "Applied" : "Would change";
            if (report.Changes.Count == 0)
            {
                console.MarkupLine(Markup.Escape($"{report.Service}: no changes (version {report.Version})." + (report.Applied ? " Stored." : string.Empty)));
            }
            else
            {
                console.MarkupLine(Markup.Escape($"{verb} {report.Service}: {report.CurrentVersion ?? "(none)"} -> {report.Version}, {report.Changes.Count} change(s)" + (report.IfMatch is null ? string.Empty : $" (If-Match {report.IfMatch})")));
                var table = new Table().Border(TableBorder.Rounded).AddColumns("Op", "Path", "Old", "New");
                foreach (var change in report.Changes)
                {
                    var color = change.Op switch { "add" => "green", "remove" => "red", _ => "yellow" };
                    table.AddRow($"[{color}]{Markup.Escape(change.Op)}[/]", Markup.Escape(change.Path), Markup.Escape(change.Old ?? ""), Markup.Escape(change.New ?? ""));
                }

                console.Write(table);
            }
        }

        return report.Valid ? ExitCodes.Ok : ExitCodes.Findings;
    }

    private static void RenderCheck(IAnsiConsole console, PolicyCheckReport report)
    {
        if (!report.Valid)
        {
            RenderErrors(console, $"{report.File} is not valid.", report.Errors);
            return;
        }

        console.MarkupLine($"[green]valid[/] {Markup.Escape(report.File)} ({Markup.Escape(report.Kind)}), policy version [bold]{Markup.Escape(report.Version ?? "?")}[/]");
        foreach (var destination in report.Destinations)
        {
            console.MarkupLine(Markup.Escape($"  destination {destination.Destination}: {(destination.Routes.Count == 0 ? "no routes" : "routes " + string.Join(", ", destination.Routes))}"));
        }

        if (report.Authorization is { } authorization)
        {
            console.MarkupLine(Markup.Escape(authorization.Enabled
                ? $"  authorization: on, default {authorization.DefaultAction}, rules {(authorization.Rules.Count == 0 ? "(none)" : string.Join(", ", authorization.Rules))}"
                : "  authorization: off (no Authorization section)"));
        }
    }

    private static void RenderErrors(IAnsiConsole console, string title, IReadOnlyList<PolicyErrorView> errors)
    {
        console.MarkupLine($"[red]{Markup.Escape(title)}[/] {errors.Count} error(s):");
        var table = new Table().Border(TableBorder.Rounded).AddColumns("Path", "Problem");
        foreach (var error in errors)
        {
            table.AddRow(Markup.Escape(error.Path), Markup.Escape(error.Message));
        }

        console.Write(table);
    }

    private static string ReadFile(FileInfo file)
    {
        try
        {
            return File.ReadAllText(file.FullName);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new MeshctlException(ExitCodes.Usage, $"'{file.FullName}' could not be read: {ex.Message}", ex);
        }
    }

    /// <summary>Reads a central document; an appsettings file (Mesh at the top) is refused, since workloads read Policy and Authorization at the top.</summary>
    private static string ReadDocument(FileInfo file, out List<PolicyErrorView> errors)
    {
        var text = ReadFile(file);
        errors = [];
        if (LooksLikeAppSettings(text))
        {
            errors.Add(new PolicyErrorView("Mesh", "this is an appsettings file; a central policy document holds Policy and Authorization at its top (take them out of Mesh), which is what workloads read."));
        }

        return text;
    }

    private static bool LooksLikeAppSettings(string text)
    {
        try
        {
            using var document = JsonDocument.Parse(text, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            return document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.EnumerateObject().Any(p => p.Name.Equals("Mesh", StringComparison.OrdinalIgnoreCase));
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
