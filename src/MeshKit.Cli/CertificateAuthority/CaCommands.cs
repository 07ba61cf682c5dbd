using System.CommandLine;
using System.Globalization;
using MeshKit.Cli.ControlPlane;
using Spectre.Console;

namespace MeshKit.Cli.CertificateAuthority;

/// <summary>One step of a rotation as it went.</summary>
/// <param name="Step">The step's name.</param>
/// <param name="Status"><c>done</c>, <c>already-done</c> or <c>waited</c>.</param>
/// <param name="Detail">What happened.</param>
internal sealed record RotationStepView(string Step, string Status, string Detail);

/// <summary><c>meshctl ca rotate --json</c>.</summary>
internal sealed record RotationReport(IReadOnlyList<RotationStepView> Steps, CaRoots Roots);

/// <summary>
/// <c>meshctl ca rotate</c>: the CA rotation procedure over the admin API. Its state is read from the control service each
/// time (which roots the bundle holds, which issues, which bundle and issuer each workload reports), so a rerun continues
/// where an earlier run stopped and never repeats a change.
/// </summary>
internal static class CaCommands
{
    public static readonly string[] Steps = ["add-root", "wait-bundle", "activate", "wait-renewal", "remove-old"];

    public static Command Create(GlobalOptions options, CliEnvironment environment)
    {
        var ca = new Command("ca", "The mesh's certificate authority.");

        var roots = new Command("roots", "List the roots in the trust bundle and which one issues certificates.");
        roots.SetBody(options, environment, async (context, cancellationToken) =>
        {
            using var api = context.CreateApi();
            var list = await api.GetRootsAsync(cancellationToken).ConfigureAwait(false);
            if (context.Json)
            {
                context.WriteJson(list);
            }
            else
            {
                RenderRoots(context.Console, list);
            }

            return ExitCodes.Ok;
        });
        ca.Subcommands.Add(roots);

        var yes = new Option<bool>("--yes", "-y") { Description = "Do not ask before changing the CA." };
        var step = new Option<string?>("--step") { Description = "Run one step only: " + string.Join(", ", Steps) + ".", HelpName = "step" };
        step.AcceptOnlyFromAmong(Steps);
        var timeout = Durations.Option("--timeout", TimeSpan.FromMinutes(30), "How long each wait may take. Workloads renew at half their certificate's lifetime (12 h with the default 24 h), so the renewal wait can be long; a rerun continues it.");
        var interval = Durations.Option("--poll-interval", TimeSpan.FromSeconds(2), "How often workloads are checked while waiting.");
        var liveWithin = Durations.Option("--live-within", TimeSpan.FromMinutes(10), "Workloads not heard from for this long are taken as gone and not waited for (they poll at least every Mesh:ControlPlane:WatchWait, 5 minutes by default).");
        var rotate = new Command("rotate", "Rotate the CA: add a new root to the bundle, wait until every workload trusts it, issue from it, wait until every workload has renewed from it, remove the old root. Safe to rerun: each step checks the control service's state and is skipped when already done.")
        {
            yes,
            step,
            timeout,
            interval,
            liveWithin,
        };
        rotate.SetBody(options, environment, async (context, cancellationToken) =>
        {
            using var api = context.CreateApi();
            var rotation = new Rotation(api, context, context.Value(yes), context.Value(timeout), context.Value(interval), context.Value(liveWithin));
            var only = context.Value(step);
            var steps = only is null ? Steps : [only];
            var done = new List<RotationStepView>();
            for (var i = 0; i < steps.Length; i++)
            {
                context.Progress($"[{Array.IndexOf(Steps, steps[i]) + 1}/{Steps.Length}] {steps[i]}");
                var result = await rotation.RunAsync(steps[i], cancellationToken).ConfigureAwait(false);
                done.Add(result);
                context.Progress($"      {result.Status}: {result.Detail}");
            }

            var final = await api.GetRootsAsync(cancellationToken).ConfigureAwait(false);
            if (context.Json)
            {
                context.WriteJson(new RotationReport(done, final));
            }
            else
            {
                RenderRoots(context.Console, final);
            }

            return ExitCodes.Ok;
        });
        ca.Subcommands.Add(rotate);

        // A user-supplied CA across replicas: the operator's root and each replica's intermediate are made offline, and a
        // replica takes new files with a reload.
        ca.Subcommands.Add(CaFileCommands.CreateRoot(options, environment));
        ca.Subcommands.Add(CaFileCommands.CreateIntermediate(options, environment));
        ca.Subcommands.Add(CaReplicaCommands.CreateReload(options, environment));
        ca.Subcommands.Add(CaReplicaCommands.CreateReplicas(options, environment));
        return ca;
    }

    private static void RenderRoots(IAnsiConsole console, CaRoots roots)
    {
        var table = new Table().Border(TableBorder.Rounded).Title($"Trust bundle {roots.BundleVersion}").AddColumns("Root", "Issuing", "Subject", "Expires", "SHA-256");
        foreach (var root in roots.Roots)
        {
            table.AddRow(
                Markup.Escape(root.Id),
                root.Active ? "[green]yes[/]" : "no",
                Markup.Escape(root.Subject),
                Markup.Escape(root.NotAfter.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)),
                Markup.Escape(root.Sha256.Length > 16 ? root.Sha256[..16] + "…" : root.Sha256));
        }

        if (roots is { UserSupplied: true, Issuer: { } issuer })
        {
            // Each replica of a user-supplied CA issues with its own intermediate under one of these roots.
            table.Caption($"Issuer of this replica: {Markup.Escape(issuer.Subject)} ({Markup.Escape(issuer.Sha256.Length > 16 ? issuer.Sha256[..16] + "…" : issuer.Sha256)}), until {issuer.NotAfter.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}");
        }

        console.Write(table);
    }

    /// <summary>The steps, each deciding from the control service's current state whether there is anything to do.</summary>
    private sealed class Rotation(ControlPlaneApi api, CommandContext context, bool yes, TimeSpan timeout, TimeSpan interval, TimeSpan liveWithin)
    {
        public Task<RotationStepView> RunAsync(string step, CancellationToken cancellationToken) => step switch
        {
            "add-root" => AddRootAsync(cancellationToken),
            "wait-bundle" => WaitBundleAsync(cancellationToken),
            "activate" => ActivateAsync(cancellationToken),
            "wait-renewal" => WaitRenewalAsync(cancellationToken),
            _ => RemoveOldAsync(cancellationToken),
        };

        /// <summary>The rotation's new root: the newest in the bundle (latest expiry; the later listed on a tie).</summary>
        private static CaRoot Newest(CaRoots roots) =>
            roots.Roots.Select((r, i) => (Root: r, Index: i)).OrderBy(x => x.Root.NotAfter).ThenBy(x => x.Index).Last().Root;

        private async Task<RotationStepView> AddRootAsync(CancellationToken cancellationToken)
        {
            var roots = await api.GetRootsAsync(cancellationToken).ConfigureAwait(false);
            if (roots.Roots.Count > 1)
            {
                var newest = Newest(roots);
                return new RotationStepView("add-root", "already-done", $"the bundle already holds {roots.Roots.Count} roots; the rotation to {newest.Id} continues.");
            }

            Confirm($"Add a new root to the trust bundle (issuance stays with {roots.Roots[0].Id})?");
            var after = await api.AddRootAsync(cancellationToken).ConfigureAwait(false);
            var added = Newest(after);
            return new RotationStepView("add-root", "done", $"added {added.Id} ({added.Subject}); bundle is now {after.BundleVersion}.");
        }

        private async Task<RotationStepView> WaitBundleAsync(CancellationToken cancellationToken)
        {
            var roots = await api.GetRootsAsync(cancellationToken).ConfigureAwait(false);
            var target = roots.BundleVersion;
            var waited = await WaitAsync(
                $"workloads to trust bundle {target}",
                w => w.BundleVersion == target,
                w => $"on bundle {w.BundleVersion ?? "?"}",
                cancellationToken).ConfigureAwait(false);
            return new RotationStepView("wait-bundle", "waited", $"every live workload reports bundle {target} ({waited}).");
        }

        private async Task<RotationStepView> ActivateAsync(CancellationToken cancellationToken)
        {
            var roots = await api.GetRootsAsync(cancellationToken).ConfigureAwait(false);
            var newest = Newest(roots);
            if (newest.Active)
            {
                return new RotationStepView("activate", "already-done", $"{newest.Id} already issues certificates.");
            }

            // Issuing from a root some workload does not trust yet would make its peers' new certificates fail there.
            var behind = Behind(await LiveAsync(cancellationToken).ConfigureAwait(false), w => w.BundleVersion == roots.BundleVersion);
            if (behind.Count > 0)
            {
                throw new MeshctlException(ExitCodes.Conflict, $"Not activating {newest.Id}: {behind.Count} live workload(s) do not report bundle {roots.BundleVersion} yet ({Describe(behind, w => $"on {w.BundleVersion ?? "?"}")}); run the wait-bundle step first.");
            }

            Confirm($"Issue every new certificate from {newest.Id}?");
            await api.ActivateRootAsync(newest.Id, cancellationToken).ConfigureAwait(false);
            return new RotationStepView("activate", "done", $"{newest.Id} now issues certificates; workloads move to it as they renew.");
        }

        private async Task<RotationStepView> WaitRenewalAsync(CancellationToken cancellationToken)
        {
            var roots = await api.GetRootsAsync(cancellationToken).ConfigureAwait(false);
            var active = roots.Roots.Single(r => r.Active);
            var newest = Newest(roots);
            if (!ReferenceEquals(active, newest))
            {
                throw new MeshctlException(ExitCodes.Conflict, $"{newest.Id} does not issue certificates yet (the issuing root is {active.Id}); run the activate step first.");
            }

            var waited = await WaitAsync(
                $"workloads to renew from {active.Id} (they renew at half their certificate's lifetime; a restarted workload renews at once)",
                w => IssuedBy(w, active),
                w => $"issued by {w.CertificateIssuer ?? "?"}",
                cancellationToken).ConfigureAwait(false);
            return new RotationStepView("wait-renewal", "waited", $"every live workload holds a certificate issued by {active.Id} ({waited}).");
        }

        private async Task<RotationStepView> RemoveOldAsync(CancellationToken cancellationToken)
        {
            var roots = await api.GetRootsAsync(cancellationToken).ConfigureAwait(false);
            var active = roots.Roots.Single(r => r.Active);
            var old = roots.Roots.Where(r => !r.Active).ToList();
            if (old.Count == 0)
            {
                return new RotationStepView("remove-old", "already-done", $"the bundle holds only {active.Id}.");
            }

            // Removing a root while a workload still holds a certificate from it would cut that workload off.
            var behind = Behind(await LiveAsync(cancellationToken).ConfigureAwait(false), w => IssuedBy(w, active));
            if (behind.Count > 0)
            {
                throw new MeshctlException(ExitCodes.Conflict, $"Not removing {string.Join(", ", old.Select(r => r.Id))}: {behind.Count} live workload(s) still hold certificates from another root ({Describe(behind, w => $"issued by {w.CertificateIssuer ?? "?"}")}); run the wait-renewal step first.");
            }

            Confirm($"Remove {string.Join(", ", old.Select(r => r.Id))} from the trust bundle?");
            CaRoots after = roots;
            foreach (var root in old)
            {
                after = await api.RemoveRootAsync(root.Id, cancellationToken).ConfigureAwait(false);
            }

            return new RotationStepView("remove-old", "done", $"removed {string.Join(", ", old.Select(r => r.Id))}; bundle is now {after.BundleVersion}, holding {active.Id}.");
        }

        private static bool IssuedBy(WorkloadEntry workload, CaRoot root) =>
            workload.CertificateIssuer is not null && string.Equals(Normalize(workload.CertificateIssuer), Normalize(root.Subject), StringComparison.Ordinal);

        private static string Normalize(string distinguishedName) =>
            string.Join(",", distinguishedName.Split(',').Select(p => p.Trim()));

        private void Confirm(string question)
        {
            if (!yes && !context.Confirm(question))
            {
                throw new MeshctlException(ExitCodes.Declined, "Declined; nothing was changed. Rerun to continue the rotation from here.");
            }
        }

        private async Task<List<WorkloadEntry>> LiveAsync(CancellationToken cancellationToken)
        {
            var list = await api.GetWorkloadsAsync(cancellationToken).ConfigureAwait(false);
            var cutoff = DateTimeOffset.UtcNow - liveWithin;
            if (list.Workloads.Any(w => w.LastSeen >= cutoff && w.CertificateIssuer is null))
            {
                throw new MeshctlException(ExitCodes.Unexpected, "The control service does not report certificate issuers in /v1/workloads (an older version?); meshctl cannot tell which root each workload's certificate comes from.");
            }

            return [.. list.Workloads.Where(w => w.LastSeen >= cutoff)];
        }

        private static List<WorkloadEntry> Behind(List<WorkloadEntry> live, Func<WorkloadEntry, bool> ready) => [.. live.Where(w => !ready(w))];

        private static string Describe(List<WorkloadEntry> workloads, Func<WorkloadEntry, string> state) =>
            string.Join(", ", workloads.Take(5).Select(w => $"{w.SpiffeId} {w.Instance} {state(w)}")) + (workloads.Count > 5 ? $", and {workloads.Count - 5} more" : string.Empty);

        /// <summary>Polls /v1/workloads until every live workload is ready, showing progress whenever it changes.</summary>
        private async Task<string> WaitAsync(string what, Func<WorkloadEntry, bool> ready, Func<WorkloadEntry, string> state, CancellationToken cancellationToken)
        {
            var started = DateTimeOffset.UtcNow;
            var last = string.Empty;
            while (true)
            {
                var live = await LiveAsync(cancellationToken).ConfigureAwait(false);
                var behind = Behind(live, ready);
                var line = $"      waiting for {what}: {live.Count - behind.Count} of {live.Count} ready" + (behind.Count == 0 ? string.Empty : $"; waiting on {Describe(behind, state)}");
                if (line != last)
                {
                    context.Progress(line);
                    last = line;
                }

                if (behind.Count == 0)
                {
                    return live.Count == 0 ? "no live workloads" : $"{live.Count} workload(s), {Durations.Format(DateTimeOffset.UtcNow - started)}";
                }

                if (DateTimeOffset.UtcNow - started >= timeout)
                {
                    throw new MeshctlException(ExitCodes.Timeout, $"Timed out after {Durations.Format(timeout)} waiting for {what}: {behind.Count} of {live.Count} not ready ({Describe(behind, state)}). Nothing was undone; rerun 'meshctl ca rotate' to continue from here.");
                }

                await Task.Delay(interval, cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
