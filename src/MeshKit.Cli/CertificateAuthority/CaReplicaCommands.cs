using System.CommandLine;
using System.Globalization;
using MeshKit.Cli.ControlPlane;
using Spectre.Console;

namespace MeshKit.Cli.CertificateAuthority;

/// <summary>What <c>meshctl ca reload</c> did on one replica.</summary>
/// <param name="Replica">The replica's address.</param>
/// <param name="Result"><c>reloaded</c>, <c>refused</c> (the replica answered a refusal), <c>failed</c> (no answer, or not the admin API's), or <c>not-tried</c> (after a refusal or failure).</param>
/// <param name="Status">The HTTP status of the answer, when there was one.</param>
/// <param name="Reason">The refusal's <c>reason</c> (<c>ca-files-invalid</c>, <c>ca-trust-conflict</c>, <c>ca-change-refused</c>, <c>ca-replicas-unknown</c>).</param>
/// <param name="Detail">The refusal's or failure's detail.</param>
/// <param name="Issuer">After a reload, the CA the replica issues with (its intermediate).</param>
/// <param name="Root">After a reload, the root of its bundle that the issuer chains to.</param>
/// <param name="BundleVersion">After a reload, its trust bundle's version.</param>
internal sealed record CaReloadResult(string Replica, string Result, int? Status, string? Reason, string? Detail, CaRoot? Issuer, CaRoot? Root, string? BundleVersion);

/// <summary><c>meshctl ca reload --json</c>: one result per replica, in the order they were given.</summary>
internal sealed record CaReloadReport(IReadOnlyList<CaReloadResult> Replicas);

/// <summary>
/// <c>meshctl ca reload</c> and <c>meshctl ca replicas</c>: a user-supplied CA (each replica on its own intermediate of the
/// operator's root) is rotated by replacing each replica's files and reloading every replica in turn.
/// </summary>
internal static class CaReplicaCommands
{
    public static Command CreateReload(GlobalOptions options, CliEnvironment environment)
    {
        var command = new Command("reload", "Make every replica named by --control-plane read its CA files again (POST /v1/ca/reload on each, in order; a user-supplied CA only). Stops at the first replica that refuses: each reload is checked against the other replicas' trust, so reload them in the order your rotation needs.");
        command.SetBody(options, environment, async (context, cancellationToken) =>
        {
            var settings = context.ControlPlane;
            var results = new List<CaReloadResult>();
            var exitCode = ExitCodes.Ok;
            string? stopped = null;
            foreach (var address in settings.AllAddresses)
            {
                if (stopped is not null)
                {
                    results.Add(new CaReloadResult(address.ToString(), "not-tried", null, null, $"not reloaded: stopped at {stopped}", null, null, null));
                    continue;
                }

                CaReloadResult result;
                try
                {
                    // One call per replica and never a failover: each replica reloads its own files.
                    using var api = new ControlPlaneApi(settings.ForReplica(address));
                    var answer = await api.ReloadCaAsync(cancellationToken).ConfigureAwait(false);
                    if (answer.Roots is { } roots)
                    {
                        result = new CaReloadResult(address.ToString(), "reloaded", answer.Status, null, null, roots.Issuer, roots.Roots.FirstOrDefault(r => r.Active), roots.BundleVersion);
                    }
                    else
                    {
                        result = new CaReloadResult(address.ToString(), "refused", answer.Status, answer.Reason, answer.Detail, null, null, null);
                        exitCode = answer.Status switch
                        {
                            409 => ExitCodes.Conflict,
                            400 => ExitCodes.Usage,
                            503 => ExitCodes.Unreachable, // ca-replicas-unknown: Consul could not be read
                            _ => ExitCodes.Unexpected,
                        };
                    }
                }
                catch (MeshctlException ex)
                {
                    result = new CaReloadResult(address.ToString(), "failed", null, null, ex.Message, null, null, null);
                    exitCode = ex.ExitCode;
                }

                results.Add(result);
                if (result.Result != "reloaded")
                {
                    stopped = address.ToString();
                }

                if (!context.Json)
                {
                    Render(context.Console, result);
                }
            }

            if (context.Json)
            {
                context.WriteJson(new CaReloadReport(results));
            }
            else
            {
                foreach (var skipped in results.Where(r => r.Result == "not-tried"))
                {
                    context.Console.MarkupLine($"{Markup.Escape(skipped.Replica)}  [yellow]not tried[/] (stopped at the refusal above)");
                }
            }

            if (results.FirstOrDefault(r => r.Result is "refused" or "failed") is { } first)
            {
                // The detail is on standard output (or in the JSON); this line says where the run stopped, for scripts.
                var reloaded = results.Count(r => r.Result == "reloaded");
                var left = results.Count(r => r.Result == "not-tried");
                var why = first.Result == "refused" ? $"refused ({first.Status} {first.Reason})" : $"failed ({first.Detail?.TrimEnd('.')})";
                await context.Error.WriteLineAsync(
                    $"meshctl: stopped at {first.Replica}: {why}."
                    + (reloaded > 0 ? $" {reloaded} replica(s) before it reloaded and keep their new CA." : string.Empty)
                    + (left > 0 ? $" {left} replica(s) after it were not tried." : string.Empty)
                    + " Fix the cause and rerun: a replica whose files did not change keeps the same CA.").ConfigureAwait(false);
            }

            return exitCode;
        });
        return command;
    }

    public static Command CreateReplicas(GlobalOptions options, CliEnvironment environment)
    {
        var command = new Command("replicas", "The CA of each live replica as the replica asked sees it (GET /v1/ca/replicas): the issuer it signs with, the root that issuer chains to, the roots it trusts; and, when two replicas do not trust each other, why (exit 1).");
        command.SetBody(options, environment, async (context, cancellationToken) =>
        {
            using var api = context.CreateApi();
            var answer = await api.GetCaReplicasAsync(cancellationToken).ConfigureAwait(false);
            var replicas = ControlPlaneApi.Read<CaReplicas>(answer, "GET /v1/ca/replicas");
            if (context.Json)
            {
                context.WriteJson(answer);
            }
            else
            {
                Render(context.Console, api.Address, replicas);
            }

            return replicas.Conflict is null ? ExitCodes.Ok : ExitCodes.Findings;
        });
        return command;
    }

    private static void Render(IAnsiConsole console, CaReloadResult result)
    {
        var replica = Markup.Escape(result.Replica);
        switch (result.Result)
        {
            case "reloaded":
                console.MarkupLine($"{replica}  [green]reloaded[/]: issuer {Describe(result.Issuer)}; root {Describe(result.Root)}; bundle {Markup.Escape(result.BundleVersion ?? "?")}");
                break;
            case "refused":
                console.MarkupLine($"{replica}  [red]refused[/] ({result.Status} {Markup.Escape(result.Reason ?? "?")}): {Markup.Escape(result.Detail ?? string.Empty)}");
                break;
            default:
                console.MarkupLine($"{replica}  [red]failed[/]: {Markup.Escape(result.Detail ?? string.Empty)}");
                break;
        }
    }

    private static string Describe(CaRoot? certificate) =>
        certificate is null ? "?" : Markup.Escape($"{certificate.Subject} ({Short(certificate.Sha256)})");

    private static void Render(IAnsiConsole console, Uri asked, CaReplicas replicas)
    {
        var now = DateTimeOffset.UtcNow;
        var table = new Table().Border(TableBorder.Rounded).Title($"CA of the replicas, as {asked} sees them")
            .AddColumns("Replica", "Issuer", "Issuer SHA-256", "Root SHA-256", "Bundle", "Updated");
        foreach (var (record, self) in replicas.Others.Select(o => (o, false)).Prepend((replicas.Self, true)))
        {
            var bundle = record.Bundle.Count == 1 ? "1 root" : $"{record.Bundle.Count.ToString(CultureInfo.InvariantCulture)} roots";
            table.AddRow(
                Markup.Escape(record.Replica) + (self ? " [grey](asked)[/]" : string.Empty),
                Markup.Escape(record.Issuer),
                Markup.Escape(Short(record.IssuerSha256)),
                Markup.Escape(Short(record.RootSha256)),
                Markup.Escape(bundle),
                Markup.Escape(Durations.Format(now - record.UpdatedAt) + " ago"));
        }

        console.Write(table);
        if (replicas.Others.Count == 0)
        {
            console.MarkupLine("[grey]No other replica publishes its CA (one control service, or no ControlPlane:Consul).[/]");
        }

        console.MarkupLine(replicas.Conflict is { } conflict
            ? $"[red]conflict: {Markup.Escape(conflict)}[/]"
            : "[green]no conflict: every replica trusts the root every other issues under.[/]");
    }

    private static string Short(string sha256) => sha256.Length > 16 ? sha256[..16] + "…" : sha256;
}
