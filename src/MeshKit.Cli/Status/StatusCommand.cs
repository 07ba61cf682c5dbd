using System.CommandLine;
using System.Globalization;
using MeshKit.Cli.ControlPlane;
using MeshKit.Identity;
using Spectre.Console;

namespace MeshKit.Cli.Status;

/// <summary>One workload in <c>meshctl status</c>, with what is wrong with it.</summary>
internal sealed record WorkloadStatusView(
    string SpiffeId,
    string? Service,
    string? Namespace,
    string? Instance,
    string? ServiceVersion,
    string CertificateSerial,
    string? CertificateIssuer,
    DateTimeOffset? NotBefore,
    DateTimeOffset NotAfter,
    double ExpiresInSeconds,
    double? LifetimeLeftPercent,
    string? BundleVersion,
    string? PolicyVersion,
    string? CentralPolicyVersion,
    string? ExpectedCentralPolicyVersion,
    string? EjectedEndpoints,
    DateTimeOffset LastSeen,
    double LastSeenSecondsAgo,
    bool Silent,
    bool Polled,
    IReadOnlyList<string> Findings);

/// <summary>The whole of <c>meshctl status --json</c>.</summary>
internal sealed record StatusReport(
    string ControlPlane,
    string TrustDomain,
    string BundleVersion,
    DateTimeOffset GeneratedAt,
    int Findings,
    IReadOnlyList<WorkloadStatusView> Workloads);

/// <summary><c>meshctl status</c>: every workload the control service knows, and which need attention.</summary>
internal static class StatusCommand
{
    /// <summary>A certificate is near expiry with less than this share of its lifetime left (renewal runs at half).</summary>
    public const double NearExpiryFraction = 0.2;

    public static Command Create(GlobalOptions options, CliEnvironment environment)
    {
        var nearExpiry = Durations.Option("--near-expiry", TimeSpan.FromMinutes(5), "Also flag certificates with less than this left, whatever their lifetime (0 turns it off; certificates with less than 20 % of their lifetime left are always flagged).");
        var silentAfter = Durations.Option("--silent-after", TimeSpan.FromMinutes(10), "Mark workloads not heard from for this long as silent (they poll at least every Mesh:ControlPlane:WatchWait, 5 minutes by default).");
        var command = new Command("status", "Show every workload the control service knows: SPIFFE ID, version, certificate expiry, bundle and policy versions, last seen. Flags certificates near expiry, workloads on stale central policy and workloads on an old trust bundle (exit 1 when any is flagged).")
        {
            nearExpiry,
            silentAfter,
        };
        command.SetBody(options, environment, async (context, cancellationToken) =>
        {
            using var api = context.CreateApi();
            var workloads = await api.GetWorkloadsAsync(cancellationToken).ConfigureAwait(false);
            var policies = await api.GetPolicyIndexAsync(cancellationToken).ConfigureAwait(false);
            var report = Build(api.Address, workloads, policies, DateTimeOffset.UtcNow, context.Value(nearExpiry), context.Value(silentAfter));
            if (context.Json)
            {
                context.WriteJson(report);
            }
            else
            {
                Render(context.Console, report);
            }

            return report.Findings > 0 ? ExitCodes.Findings : ExitCodes.Ok;
        });
        return command;
    }

    public static StatusReport Build(Uri controlPlane, WorkloadList list, PolicyIndex policies, DateTimeOffset now, TimeSpan nearExpiry, TimeSpan silentAfter)
    {
        var central = policies.Services.ToDictionary(s => s.Service, s => s.Version, StringComparer.Ordinal);
        var views = new List<WorkloadStatusView>();
        foreach (var w in list.Workloads)
        {
            var findings = new List<string>();
            var id = SpiffeId.TryParse(w.SpiffeId, out var parsed) ? parsed : null;
            var left = w.NotAfter - now;
            double? leftPercent = w.NotBefore is { } notBefore && w.NotAfter > notBefore
                ? Math.Round(100 * Math.Max(0, left.TotalSeconds) / (w.NotAfter - notBefore).TotalSeconds, 1)
                : null;
            if (left <= TimeSpan.Zero)
            {
                findings.Add("certificate-expired");
            }
            else if (leftPercent < NearExpiryFraction * 100 || left < nearExpiry)
            {
                findings.Add("certificate-near-expiry");
            }

            // The central document a workload should run is the one stored under its service key. A workload that was
            // just issued a certificate and has not polled the control channel yet has reported no versions at all.
            var key = id is null ? null : ServiceKey(id);
            var expected = key is not null && central.TryGetValue(key, out var version) ? version : null;
            var polled = w.BundleVersion is not null || w.PolicyVersion is not null;
            if (polled && !string.Equals(expected, w.CentralPolicyVersion, StringComparison.Ordinal))
            {
                findings.Add("stale-policy");
            }

            if (polled && !string.Equals(w.BundleVersion, list.BundleVersion, StringComparison.Ordinal))
            {
                findings.Add("old-bundle");
            }

            var seenAgo = now - w.LastSeen;
            views.Add(new WorkloadStatusView(
                w.SpiffeId, id?.Service, id?.Namespace, w.Instance, w.ServiceVersion, w.CertificateSerial, w.CertificateIssuer,
                w.NotBefore, w.NotAfter, Math.Round(left.TotalSeconds, 1), leftPercent, w.BundleVersion, w.PolicyVersion,
                w.CentralPolicyVersion, expected, w.EjectedEndpoints, w.LastSeen, Math.Round(seenAgo.TotalSeconds, 1),
                seenAgo > silentAfter, polled, findings));
        }

        return new StatusReport(controlPlane.ToString(), list.TrustDomain, list.BundleVersion, now, views.Count(v => v.Findings.Count > 0), views);
    }

    /// <summary>The key central policy is stored under for a workload: its service, or <c>service.namespace</c> outside <c>default</c>.</summary>
    public static string ServiceKey(SpiffeId id) =>
        id.Namespace == SpiffeId.DefaultNamespace ? id.Service : $"{id.Service}.{id.Namespace}";

    private static void Render(IAnsiConsole console, StatusReport report)
    {
        console.MarkupLine($"Control service [bold]{Markup.Escape(report.ControlPlane)}[/], trust domain [bold]{Markup.Escape(report.TrustDomain)}[/], bundle [bold]{Markup.Escape(report.BundleVersion)}[/]");
        if (report.Workloads.Count == 0)
        {
            console.MarkupLine("No workload has reported to the control service yet.");
            return;
        }

        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn(new TableColumn("Workload").NoWrap());
        foreach (var column in new[] { "Certificate", "Bundle", "Policy", "Central", "Seen", "Findings" })
        {
            table.AddColumn(column);
        }

        foreach (var w in report.Workloads)
        {
            var expired = w.Findings.Contains("certificate-expired");
            var near = w.Findings.Contains("certificate-near-expiry");
            var expiry = (expired ? $"expired {Durations.Format(TimeSpan.FromSeconds(-w.ExpiresInSeconds))} ago" : $"expires in {Durations.Format(TimeSpan.FromSeconds(w.ExpiresInSeconds))}")
                + (w.LifetimeLeftPercent is { } p && !expired ? $"\n{p.ToString("0", CultureInfo.InvariantCulture)} % of its life left" : string.Empty);
            var stale = w.Findings.Contains("stale-policy");
            var central = !w.Polled ? "not polled yet" : Short(w.CentralPolicyVersion) + (stale ? $"\nstore: {Short(w.ExpectedCentralPolicyVersion)}" : string.Empty);
            var who = $"{Markup.Escape(w.SpiffeId)}\n[grey]{Markup.Escape($"{w.Instance ?? "-"}, version {w.ServiceVersion ?? "-"}")}[/]";
            table.AddRow(
                who,
                Style(expiry, expired ? "red" : near ? "yellow" : null),
                Style(Short(w.BundleVersion), w.Findings.Contains("old-bundle") ? "yellow" : null),
                Style(Short(w.PolicyVersion), null),
                Style(central, stale ? "yellow" : null),
                Style(Durations.Format(TimeSpan.FromSeconds(w.LastSeenSecondsAgo)) + " ago" + (w.Silent ? "\n(silent)" : string.Empty), w.Silent ? "grey" : null),
                Style(w.Findings.Count == 0 ? "ok" : string.Join("\n", w.Findings.Select(Label)), w.Findings.Count == 0 ? "green" : "yellow"));
        }

        console.Write(table);
        console.MarkupLine(report.Findings == 0
            ? $"{report.Workloads.Count} workload(s), none flagged."
            : $"{report.Workloads.Count} workload(s), [yellow]{report.Findings} flagged[/].");
    }

    /// <summary>Versions are hashes: the table shows their first 8 characters, as git shows commits; --json has them whole.</summary>
    private static string Short(string? version) => version is null ? "none" : version.Length > 8 ? version[..8] : version;

    private static string Label(string finding) => finding switch
    {
        "certificate-expired" => "cert expired",
        "certificate-near-expiry" => "cert expiring",
        "stale-policy" => "stale policy",
        "old-bundle" => "old bundle",
        _ => finding,
    };

    private static string Style(string text, string? style) =>
        style is null ? Markup.Escape(text) : $"[{style}]{Markup.Escape(text)}[/]";
}
