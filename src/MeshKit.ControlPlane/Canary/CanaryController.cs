using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using MeshKit.ControlPlane.Coordination;
using MeshKit.ControlPlane.Policy;
using MeshKit.ControlPlane.Storage;
using MeshKit.ControlPlane.Workloads;
using MeshKit.Identity;
using MeshKit.Routing;

namespace MeshKit.ControlPlane.Canary;

/// <summary>A canary route found in a central policy document.</summary>
internal sealed record CanaryRoute(string Service, string Destination, RoutePolicy Route, CanaryPolicy Spec, string Fingerprint)
{
    public string Key => $"{Service}/{Destination}/{Route.Name}";
}

/// <summary>
/// Runs every canary of central policy, on the leading replica only: every interval, it checks the callers' figures for
/// the canary subset against the spec's thresholds, and moves the route's split a step up, holds it, or rolls it back, by
/// writing a new version of the calling service's central policy (which the control channel pushes). An operator's promote,
/// abort, pause or resume wins over the analysis. It never moves a canary up without figures: missing reports, too little
/// traffic, a store it cannot read or a canary subset with no endpoints make it wait.
/// </summary>
internal sealed partial class CanaryController : BackgroundService
{
    /// <summary>How often due canaries are looked at (each is checked once per its own interval).</summary>
    internal static readonly TimeSpan TickPeriod = TimeSpan.FromMilliseconds(250);

    private readonly CentralPolicy _central;
    private readonly CanaryTrafficStore _traffic;
    private readonly WorkloadRegistry _workloads;
    private readonly ReplicaLeadership _leadership;
    private readonly CanaryStateStore _store;
    private readonly SharedCanaryTraffic _sharedTraffic;

    // Per canary, the other replicas' totals at its last check: the next check counts their growth since.
    private readonly Dictionary<string, Dictionary<string, RemoteBaseline>> _baselines = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private readonly ILogger<CanaryController> _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private Dictionary<string, CanaryState>? _states;
    private DateTimeOffset _leadingSince;

    public CanaryController(
        CentralPolicy central,
        CanaryTrafficStore traffic,
        SharedCanaryTraffic sharedTraffic,
        WorkloadRegistry workloads,
        ReplicaLeadership leadership,
        SharedConsul shared,
        TimeProvider time,
        ILogger<CanaryController> logger)
    {
        _central = central;
        _traffic = traffic;
        _sharedTraffic = sharedTraffic;
        _workloads = workloads;
        _leadership = leadership;
        _store = CanaryStateStore.Create(shared, central);
        _time = time;
        _logger = logger;
    }

    /// <summary>Gets where the states are kept.</summary>
    public string StateLocation => _store.Location;

    /// <summary>Gets the canaries' states as this replica last knew them (the leader's are current).</summary>
    public IReadOnlyList<CanaryState> States
    {
        get
        {
            var states = _states;
            return states is null ? [] : [.. states.Values.OrderBy(s => s.Key, StringComparer.Ordinal)];
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TickPeriod, _time);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            try
            {
                await RunOnceAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogTickFailed(_logger, ex);
            }
        }
    }

    /// <summary>Looks at every canary once: those due are checked and moved.</summary>
    public async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        if (!_leadership.IsLeader)
        {
            // A follower forgets; when it leads, it reads the states the last leader left.
            _states = null;
            _baselines.Clear();
            return;
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var states = await EnsureLoadedAsync(cancellationToken).ConfigureAwait(false);
            if (!_central.Store.IsLoaded)
            {
                return; // nothing is known of the specs or the weights: nothing moves
            }

            var now = _time.GetUtcNow();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var canary in Find())
            {
                seen.Add(canary.Key);
                if (!states.TryGetValue(canary.Key, out var state) || state.Fingerprint != canary.Fingerprint)
                {
                    if (state is not null)
                    {
                        LogRestarted(_logger, canary.Key);
                    }

                    state = New(canary, now);
                }

                var next = await StepAsync(canary, state, now, cancellationToken).ConfigureAwait(false);
                if (!ReferenceEquals(next, states.GetValueOrDefault(canary.Key)))
                {
                    states[canary.Key] = next;
                    await _store.SaveAsync(next, cancellationToken).ConfigureAwait(false);
                }
            }

            foreach (var gone in states.Keys.Where(k => !seen.Contains(k)).ToList())
            {
                states.Remove(gone);
                await _store.DeleteAsync(gone, cancellationToken).ConfigureAwait(false);
                LogRemoved(_logger, gone);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>An operator's action on one canary: <c>promote</c>, <c>abort</c>, <c>pause</c> or <c>resume</c>.</summary>
    /// <returns>The canary's new state, or why the action was refused (status, reason, detail).</returns>
    public async Task<(CanaryState? State, (int Status, string Reason, string Detail)? Refusal)> ApplyAsync(string key, string action, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var states = await EnsureLoadedAsync(cancellationToken).ConfigureAwait(false);
            if (!_central.Store.IsLoaded)
            {
                return (null, (StatusCodes.Status503ServiceUnavailable, "policy-store-unavailable", "The central policy store has not been read; no canary can be changed now. Retry shortly."));
            }

            if (Find().FirstOrDefault(c => c.Key == key) is not { } canary)
            {
                return (null, (StatusCodes.Status404NotFound, "canary-not-found", $"No canary '{key}' is in central policy; canaries are named <service>/<destination>/<route> (GET /v1/canaries lists them)."));
            }

            var now = _time.GetUtcNow();
            var state = states.TryGetValue(key, out var known) && known.Fingerprint == canary.Fingerprint ? known : New(canary, now);
            CanaryState next;
            switch (action)
            {
                case "promote":
                    if (await WriteWeightAsync(canary, 100, cancellationToken).ConfigureAwait(false) is { } promoteError)
                    {
                        return (null, (StatusCodes.Status503ServiceUnavailable, "canary-write-failed", promoteError));
                    }

                    next = Decide(state with { Phase = CanaryPhase.Promoted, Weight = 100, Reason = "promoted by an operator" }, now, "promote", null);
                    break;
                case "abort":
                    if (await WriteWeightAsync(canary, 0, cancellationToken).ConfigureAwait(false) is { } abortError)
                    {
                        return (null, (StatusCodes.Status503ServiceUnavailable, "canary-write-failed", abortError));
                    }

                    next = Decide(state with { Phase = CanaryPhase.RolledBack, Weight = 0, Reason = "aborted by an operator" }, now, "abort", null);
                    break;
                case "pause":
                    if (state.IsDone)
                    {
                        return (null, (StatusCodes.Status409Conflict, "canary-ended", $"Canary '{key}' has ended ({state.Phase}); there is nothing to pause."));
                    }

                    next = Decide(state with { Phase = CanaryPhase.Paused, Reason = "paused by an operator" }, now, "pause", null);
                    break;
                case "resume":
                    // A paused canary goes on from its step; an ended one starts over from the first step.
                    next = state.Phase == CanaryPhase.Paused || !state.IsDone
                        ? state with { Phase = CanaryPhase.Progressing, NextCheck = now + canary.Spec.Interval, Reason = "resumed by an operator" }
                        : New(canary, now) with { Reason = "restarted by an operator" };
                    next = Decide(next, now, "resume", null);
                    break;
                default:
                    return (null, (StatusCodes.Status400BadRequest, "action-invalid", $"'{action}' is not a canary action; use promote, abort, pause or resume."));
            }

            LogManual(_logger, action, key, next.Weight);
            states[key] = next;
            await _store.SaveAsync(next, cancellationToken).ConfigureAwait(false);
            return (next, null);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Every canary route of the stored central policy documents that validate.</summary>
    internal IEnumerable<CanaryRoute> Find()
    {
        foreach (var document in _central.All())
        {
            var read = PolicyDocument.Validate(document.Json);
            if (!read.IsValid)
            {
                continue;
            }

            foreach (var (destination, policy) in read.Snapshot!.Destinations)
            {
                foreach (var route in policy.Routes)
                {
                    if (route.Canary is { } spec)
                    {
                        yield return new CanaryRoute(document.Service, destination, route, spec, Fingerprint(spec, route.Index));
                    }
                }
            }
        }
    }

    private async Task<Dictionary<string, CanaryState>> EnsureLoadedAsync(CancellationToken cancellationToken)
    {
        if (_states is { } loaded)
        {
            return loaded;
        }

        _leadingSince = _leadership.LeaderSince ?? _time.GetUtcNow();
        return _states = await _store.LoadAsync(cancellationToken).ConfigureAwait(false);
    }

    private static CanaryState New(CanaryRoute canary, DateTimeOffset now) => new()
    {
        Key = canary.Key,
        Service = canary.Service,
        Destination = canary.Destination,
        Route = canary.Route.Name,
        StableSubset = canary.Spec.StableSubset,
        CanarySubset = canary.Spec.CanarySubset,
        Fingerprint = canary.Fingerprint,
        Phase = CanaryPhase.Progressing,
        Weight = CurrentWeight(canary),
        NextCheck = now,
        Reason = "starting",
    };

    private async Task<CanaryState> StepAsync(CanaryRoute canary, CanaryState state, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (state.IsDone || state.Phase == CanaryPhase.Paused || state.NextCheck > now)
        {
            return state;
        }

        var spec = canary.Spec;
        var due = state with { NextCheck = now + spec.Interval };
        if (!HasEndpoints(canary, spec.CanarySubset, now, out var noEndpoints))
        {
            return Wait(due, now, noEndpoints);
        }

        if (state.Step < 0)
        {
            var first = spec.Steps[0];
            if (await WriteWeightAsync(canary, first, cancellationToken).ConfigureAwait(false) is { } error)
            {
                return state with { Reason = error };
            }

            LogStarted(_logger, canary.Key, spec.CanarySubset, first);
            return Decide(due with { Phase = CanaryPhase.Progressing, Step = 0, Weight = first, Reason = $"step 1 of {spec.Steps.Length}: {first} % to '{spec.CanarySubset}'" }, now, "start", null);
        }

        // A check needs a whole interval of reports: not one of a replica that just started or just took the lead.
        var from = now - spec.Interval;
        var heardSince = _traffic.Since > _leadingSince ? _traffic.Since : _leadingSince;
        if (heardSince > from)
        {
            return Wait(due, now, $"this replica has heard the callers' reports for {(now - heardSince).TotalSeconds:0.#} s of the {spec.Interval.TotalSeconds:0.#} s interval (it started or took the lead since); the canary waits for a whole interval");
        }

        var stable = _traffic.Sum(canary.Service, canary.Destination, canary.Route.Name, spec.StableSubset, from, now);
        var figures = _traffic.Sum(canary.Service, canary.Destination, canary.Route.Name, spec.CanarySubset, from, now);
        var (remoteRequests, baselined) = AddOtherReplicas(canary, ref stable, ref figures);
        if (!baselined)
        {
            return Wait(due, now, $"the other replicas' reports (received from the workloads that talk to them) count from this check on; the canary waits one interval of {spec.Interval.TotalSeconds:0.#} s");
        }

        var heardHere = _traffic.LastReport(canary.Service) is { } last && now - last <= spec.Interval;
        if (!heardHere && remoteRequests == 0)
        {
            return Wait(due, now, $"no report from {canary.Service}'s workloads in the last {spec.Interval.TotalSeconds:0.#} s; the canary never moves without figures");
        }

        var check = CanaryAnalysis.Check(spec, stable, figures);
        switch (check.Verdict)
        {
            case CheckVerdict.NotEnoughTraffic:
                return Wait(due, now, check.Detail, check);
            case CheckVerdict.Failed:
                var failed = state.FailedChecks + 1;
                if (failed >= spec.FailedChecks)
                {
                    if (await WriteWeightAsync(canary, 0, cancellationToken).ConfigureAwait(false) is { } error)
                    {
                        return state with { Reason = error };
                    }

                    LogRolledBack(_logger, canary.Key, failed, check.Detail);
                    return Decide(due with { Phase = CanaryPhase.RolledBack, Weight = 0, FailedChecks = failed, Reason = $"rolled back after {failed} failed check(s): {check.Detail}" }, now, "rollback", check);
                }

                LogCheckFailed(_logger, canary.Key, failed, spec.FailedChecks, check.Detail);
                return Decide(due with { Phase = CanaryPhase.Progressing, FailedChecks = failed, Reason = $"check failed ({failed} of {spec.FailedChecks} allowed); holding at {state.Weight} %: {check.Detail}" }, now, "hold", check);
            default:
                if (state.Step + 1 < spec.Steps.Length)
                {
                    var weight = spec.Steps[state.Step + 1];
                    if (await WriteWeightAsync(canary, weight, cancellationToken).ConfigureAwait(false) is { } error)
                    {
                        return state with { Reason = error };
                    }

                    LogAdvanced(_logger, canary.Key, weight, check.Detail);
                    return Decide(due with { Phase = CanaryPhase.Progressing, Step = state.Step + 1, Weight = weight, Reason = $"step {state.Step + 2} of {spec.Steps.Length}: {weight} % to '{spec.CanarySubset}' after a passed check: {check.Detail}" }, now, "advance", check);
                }

                if (!spec.Promote)
                {
                    LogFinished(_logger, canary.Key, "held at its last step", state.Weight);
                    return Decide(due with { Phase = CanaryPhase.Finished, Reason = $"every step passed; held at {state.Weight} % (Canary:Promote is false). Last check: {check.Detail}" }, now, "finish", check);
                }

                if (await WriteWeightAsync(canary, 100, cancellationToken).ConfigureAwait(false) is { } promoteError)
                {
                    return state with { Reason = promoteError };
                }

                LogFinished(_logger, canary.Key, "promoted", 100);
                return Decide(due with { Phase = CanaryPhase.Promoted, Weight = 100, Reason = $"every step passed; promoted: all traffic to '{spec.CanarySubset}'. Last check: {check.Detail}" }, now, "promote", check);
        }
    }

    /// <summary>
    /// Adds to this replica's figures what the other replicas received since this canary's last check (their totals'
    /// growth). Returns the requests added, and whether every other replica had a baseline (a replica seen for the first
    /// time, or after a leadership change, counts from now on: the canary waits one interval).
    /// </summary>
    private (long Requests, bool Baselined) AddOtherReplicas(CanaryRoute canary, ref SubsetFigures stable, ref SubsetFigures figures)
    {
        var others = _sharedTraffic.Others;
        if (others.Count == 0)
        {
            _baselines.Remove(canary.Key);
            return (0, true);
        }

        var previous = _baselines.GetValueOrDefault(canary.Key);
        var next = new Dictionary<string, RemoteBaseline>(StringComparer.Ordinal);
        var baselined = true;
        long requests = 0;
        foreach (var other in others)
        {
            var otherStable = other.Find(canary.Service, canary.Destination, canary.Route.Name, canary.Spec.StableSubset);
            var otherCanary = other.Find(canary.Service, canary.Destination, canary.Route.Name, canary.Spec.CanarySubset);
            next[other.Replica] = new RemoteBaseline(other.StartedAt, otherStable, otherCanary);
            if (previous is null || !previous.TryGetValue(other.Replica, out var before))
            {
                baselined = false;
                continue;
            }

            // A replica that restarted counts from zero again: all it has is new.
            var grownStable = before.StartedAt == other.StartedAt ? CanaryTrafficStore.Beyond(otherStable, before.Stable) : otherStable;
            var grownCanary = before.StartedAt == other.StartedAt ? CanaryTrafficStore.Beyond(otherCanary, before.Canary) : otherCanary;
            stable = CanaryTrafficStore.Add(stable, grownStable);
            figures = CanaryTrafficStore.Add(figures, grownCanary);
            requests += grownStable.Requests + grownCanary.Requests;
        }

        _baselines[canary.Key] = next;
        return (requests, baselined);
    }

    private sealed record RemoteBaseline(DateTimeOffset StartedAt, SubsetFigures Stable, SubsetFigures Canary);

    private CanaryState Wait(CanaryState state, DateTimeOffset now, string reason, CanaryCheck? check = null)
    {
        var waiting = state with { Phase = CanaryPhase.Waiting, Reason = reason };
        if (state.Phase == CanaryPhase.Waiting)
        {
            return waiting; // one decision when it starts waiting, not one per interval
        }

        LogWaiting(_logger, state.Key, reason);
        return Decide(waiting, now, "wait", check);
    }

    private static CanaryState Decide(CanaryState state, DateTimeOffset now, string action, CanaryCheck? check) =>
        state.With(new CanaryDecision(now, action, state.Weight, state.Reason, check is null ? null : FiguresView.Of(check.Stable), check is null ? null : FiguresView.Of(check.Canary)));

    /// <summary>
    /// Whether the canary subset has endpoints, as far as this replica can tell: with subsets named by <c>version</c>, a
    /// workload of the destination with that version has watched recently. Other subset keys are not known here.
    /// </summary>
    private bool HasEndpoints(CanaryRoute canary, string subset, DateTimeOffset now, out string reason)
    {
        reason = string.Empty;
        if (!string.Equals(canary.Route.SubsetKey, "version", StringComparison.Ordinal))
        {
            return true;
        }

        var dot = canary.Destination.IndexOf('.', StringComparison.Ordinal);
        var service = dot < 0 ? canary.Destination : canary.Destination[..dot];
        var ns = dot < 0 ? SpiffeId.DefaultNamespace : canary.Destination[(dot + 1)..];
        foreach (var workload in _workloads.List())
        {
            if (workload.ServiceVersion == subset
                && now - workload.LastSeen < TimeSpan.FromMinutes(10)
                && SpiffeId.TryParse(workload.SpiffeId, out var id)
                && id.Service == service && id.Namespace == ns)
            {
                return true;
            }
        }

        reason = $"subset '{subset}' of {canary.Destination} has no endpoints: no workload of {canary.Destination} with version {subset} has reached the control service in the last 10 minutes; the canary waits for one";
        return false;
    }

    private static int CurrentWeight(CanaryRoute canary)
    {
        var split = canary.Route.Split;
        if (split is null || split.Total == 0)
        {
            return 0;
        }

        var index = split.Subsets.IndexOf(canary.Spec.CanarySubset);
        return index < 0 ? 0 : (int)Math.Round(split.Percent(index));
    }

    /// <summary>
    /// Writes the canary's weight into the route's split of the calling service's central document, as a new version (one
    /// push to its workloads). Returns why it could not, or <see langword="null"/>.
    /// </summary>
    private async Task<string?> WriteWeightAsync(CanaryRoute canary, int weight, CancellationToken cancellationToken)
    {
        var document = _central.Get(canary.Service);
        if (document is null)
        {
            return $"the central policy of '{canary.Service}' is gone";
        }

        try
        {
            var root = JsonNode.Parse(document.Json, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true })!.AsObject();
            var route = Child(Child(Child(Child(root, "Policy"), "Destinations"), canary.Destination), "Routes") switch
            {
                JsonArray list => list[canary.Route.Index],
                JsonObject map => Child(map, canary.Route.Index.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                _ => null,
            };
            if (route is not JsonObject routeObject)
            {
                return $"route {canary.Route.Index} of {canary.Destination} was not found in '{canary.Service}''s document";
            }

            var splitName = routeObject.Select(p => p.Key).FirstOrDefault(k => string.Equals(k, "Split", StringComparison.OrdinalIgnoreCase)) ?? "Split";
            routeObject[splitName] = new JsonObject
            {
                [canary.Spec.StableSubset] = 100 - weight,
                [canary.Spec.CanarySubset] = weight,
            };

            var json = root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
            var read = PolicyDocument.Validate(json);
            if (!read.IsValid)
            {
                return $"the new split does not validate: {string.Join("; ", read.Errors)}";
            }

            await _central.Store.PutAsync(canary.Service, json, read.Snapshot!.Version, _central.Store.Get(canary.Service)?.Version ?? "none", cancellationToken).ConfigureAwait(false);
            return null;
        }
        catch (Exception ex) when (ex is PolicyConflictException or PolicyStoreUnavailableException or JsonException)
        {
            LogWriteFailed(_logger, canary.Key, weight, ex.Message);
            return $"could not write weight {weight} %: {ex.Message}; retrying";
        }
    }

    private static JsonNode? Child(JsonNode? node, string name)
    {
        if (node is not JsonObject obj)
        {
            return null;
        }

        foreach (var (key, value) in obj)
        {
            if (string.Equals(key, name, StringComparison.OrdinalIgnoreCase))
            {
                return value;
            }
        }

        return null;
    }

    private static string Fingerprint(CanaryPolicy spec, int index) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(
            $"{index}|{spec.StableSubset}|{spec.CanarySubset}|{string.Join(',', spec.Steps)}|{spec.Interval}|{spec.MinRequests}|{spec.MinSuccessRate}|{spec.MaxSuccessRateDrop}|{spec.MaxP99}|{spec.MaxP99Increase}|{spec.FailedChecks}|{spec.Promote}")))[..16];

    [LoggerMessage(EventId = 1501, Level = LogLevel.Information, Message = "Canary {Canary} started: {Weight} % of the route's traffic to subset '{Subset}'.")]
    private static partial void LogStarted(ILogger logger, string canary, string subset, int weight);

    [LoggerMessage(EventId = 1502, Level = LogLevel.Information, Message = "Canary {Canary} advanced to {Weight} %: {Check}.")]
    private static partial void LogAdvanced(ILogger logger, string canary, int weight, string check);

    [LoggerMessage(EventId = 1503, Level = LogLevel.Warning, Message = "Canary {Canary} failed a check ({Failed} of {Allowed} allowed) and holds its weight: {Check}.")]
    private static partial void LogCheckFailed(ILogger logger, string canary, int failed, int allowed, string check);

    [LoggerMessage(EventId = 1504, Level = LogLevel.Warning, Message = "Canary {Canary} rolled back after {Failed} failed check(s): all traffic to the stable subset. Last check: {Check}.")]
    private static partial void LogRolledBack(ILogger logger, string canary, int failed, string check);

    [LoggerMessage(EventId = 1505, Level = LogLevel.Information, Message = "Canary {Canary} {Outcome} at {Weight} %.")]
    private static partial void LogFinished(ILogger logger, string canary, string outcome, int weight);

    [LoggerMessage(EventId = 1506, Level = LogLevel.Information, Message = "Canary {Canary} waits: {Reason}.")]
    private static partial void LogWaiting(ILogger logger, string canary, string reason);

    [LoggerMessage(EventId = 1507, Level = LogLevel.Information, Message = "Operator action '{Action}' on canary {Canary}; its weight is {Weight} %.")]
    private static partial void LogManual(ILogger logger, string action, string canary, int weight);

    [LoggerMessage(EventId = 1508, Level = LogLevel.Warning, Message = "Canary {Canary}: could not write weight {Weight} % into central policy ({Error}); it is tried again.")]
    private static partial void LogWriteFailed(ILogger logger, string canary, int weight, string error);

    [LoggerMessage(EventId = 1509, Level = LogLevel.Information, Message = "Canary {Canary}'s spec changed: it starts over from its first step.")]
    private static partial void LogRestarted(ILogger logger, string canary);

    [LoggerMessage(EventId = 1510, Level = LogLevel.Information, Message = "Canary {Canary} is no longer in central policy; its state is dropped.")]
    private static partial void LogRemoved(ILogger logger, string canary);

    [LoggerMessage(EventId = 1511, Level = LogLevel.Error, Message = "The canary analysis failed this round; it runs again at the next tick.")]
    private static partial void LogTickFailed(ILogger logger, Exception exception);
}
