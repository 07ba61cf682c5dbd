using MeshKit.Hosting;
using MeshKit.Identity;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshKit.ControlChannel;

/// <summary>
/// The workload's one long poll on the control service (Consul-style <c>index</c> and <c>wait</c>). It reports the
/// workload's status on every poll and applies what comes back: trust-bundle changes, revocations and central policy. A
/// change arrives on the poll that is already waiting; while nothing changes the control service sees one request per wait
/// period. Before the host starts serving, it waits (up to <c>Mesh:ControlPlane:StartupTimeout</c>) until the control
/// service says what this service's central policy is, so a workload never serves on its local policy alone by accident.
/// The channel is the control service's: a host whose certificates come from an in-process CA (test mode) has none.
/// </summary>
internal sealed partial class ControlChannelWatcher(
    IOptions<MeshOptions> options,
    IWorkloadCertificateIssuer issuer,
    WorkloadIdentitySource identity,
    ControlChannelState state,
    MeshKit.Policy.PolicyWatcher policies,
    MeshKit.Balancing.EndpointStateRegistry endpointStates,
    TimeProvider time,
    ILogger<ControlChannelWatcher> logger) : BackgroundService, IHostedLifecycleService
{
    private static readonly TimeSpan NudgeInterval = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan WatchRetryBaseDelay = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan WatchRetryMaxDelay = TimeSpan.FromSeconds(30);
    private readonly Lock _nudgeGate = new();
    private CancellationTokenSource? _poll;
    private long _lastNudge;
    private ITimer? _pendingNudge;
    private WatchPosition _position;
    private string? _lastCentralState;
    private Uri? _centralFrom;
    private Uri? _lastLagging;

    /// <summary>
    /// Reports a status change (an ejection) now rather than at the next poll: ends the waiting poll, at most once a second.
    /// A change within a second of the last report is sent when that second is over, not left for the next poll.
    /// </summary>
    private void Nudge()
    {
        lock (_nudgeGate)
        {
            var now = time.GetTimestamp();
            if (_lastNudge != 0 && time.GetElapsedTime(_lastNudge, now) is var since && since < NudgeInterval)
            {
                _pendingNudge ??= time.CreateTimer(
                    static state =>
                    {
                        var watcher = (ControlChannelWatcher)state!;
                        lock (watcher._nudgeGate)
                        {
                            watcher._pendingNudge?.Dispose();
                            watcher._pendingNudge = null;
                            watcher._lastNudge = 0;
                        }

                        watcher.Nudge();
                    },
                    this,
                    NudgeInterval - since,
                    Timeout.InfiniteTimeSpan);
                return;
            }

            _lastNudge = now;
        }

        try
        {
            Volatile.Read(ref _poll)?.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>The ejected endpoints as <c>orders=10.0.0.1:443,10.0.0.2:443;inventory=...</c>, capped at 1 kB.</summary>
    private string? EjectedSummary()
    {
        var ejected = endpointStates.EjectedNow();
        if (ejected.Count == 0)
        {
            return null;
        }

        var text = string.Join(';', ejected.GroupBy(e => e.Destination).Select(g => g.Key + "=" + string.Join(',', g.Select(e => e.Endpoint))));
        return text.Length <= 1024 ? text : text[..1024];
    }

    /// <summary>
    /// Runs after the first certificate was obtained (<see cref="ControlChannel.CertificateRenewalService"/> is registered first)
    /// and before anything serves: polls until the control service says what this service's central policy is.
    /// </summary>
    public async Task StartingAsync(CancellationToken cancellationToken)
    {
        if (issuer is not ControlPlaneClient controlPlane)
        {
            LogNoControlChannel(logger, issuer.Describe());
            return;
        }

        var settings = options.Value.ControlPlane;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(settings.StartupTimeout);
        string last;
        var failures = 0;
        while (true)
        {
            try
            {
                var (result, next) = await controlPlane.WatchAsync(WatchPosition.Start, settings.WatchWait, Report(), deadline.Token).ConfigureAwait(false);
                _position = next;
                Apply(result, next.Replica);
                if (result.CentralPolicyState != "unknown")
                {
                    return;
                }

                last = "the control service answered that it does not know this service's central policy yet (its policy store has not loaded)";
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                last = ex is OperationCanceledException ? "the control service did not answer in time" : ex.Message;
            }

            if (deadline.IsCancellationRequested)
            {
                break;
            }

            LogCentralPolicyPending(logger, last);
            try
            {
                await Task.Delay(RetryBackoff.Next(++failures, WatchRetryBaseDelay, WatchRetryMaxDelay), time, deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        cancellationToken.ThrowIfCancellationRequested();
        if (settings.StartWithoutCentralPolicy)
        {
            LogStartingOnLocalPolicy(logger, settings.StartupTimeout, last);
            return;
        }

        throw new TimeoutException(
            $"Mesh:ControlPlane:StartupTimeout ({settings.StartupTimeout}) elapsed before the control service ({controlPlane.DescribeReplicas()}) said what the central policy of "
            + $"{options.Value.Service.Name} is: {last}. A workload does not serve on its local policy alone unless Mesh:ControlPlane:StartWithoutCentralPolicy is true "
            + "(its central authorization rules could be missing).");
    }

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override void Dispose()
    {
        lock (_nudgeGate)
        {
            _pendingNudge?.Dispose();
            _pendingNudge = null;
        }

        base.Dispose();
    }

    private WorkloadReport Report()
    {
        var meshOptions = options.Value;
        return new WorkloadReport(meshOptions.Service.InstanceId!, meshOptions.Service.Version, identity.Current?.Bundle.Version, policies.Current.Version, policies.CentralVersion, EjectedSummary());
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (issuer is not ControlPlaneClient controlPlane)
        {
            return;
        }

        var meshOptions = options.Value;
        var wait = meshOptions.ControlPlane.WatchWait;
        endpointStates.Ejected += Nudge;

        // A new certificate: move the waiting poll onto a connection that presents it, and report the new serial now.
        identity.Changed += _ => Nudge();
        var position = _position;
        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            var current = identity.Current;
            if (current is null || current.IsExpired(time.GetUtcNow()))
            {
                // The watch is authenticated by the certificate; wait for renewal to produce one.
                await DelayAsync(TimeSpan.FromSeconds(1), stoppingToken).ConfigureAwait(false);
                continue;
            }

            try
            {
                var report = Report();
                using var poll = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                Volatile.Write(ref _poll, poll);
                WatchResult result;
                WatchPosition next;
                try
                {
                    (result, next) = await controlPlane.WatchAsync(position, wait, report, poll.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
                {
                    // Nudged: report again at once, with the same index.
                    continue;
                }
                finally
                {
                    Volatile.Write(ref _poll, null);
                }


                // Consul's rules: an index that goes backwards means the server restarted or was replaced; start over. Another
                // replica's index was never compared with this one (the client starts from 0 there).
                position = next.Replica == position.Replica && next.Index < position.Index ? next with { Index = 0 } : next;
                failures = 0;
                Apply(result, next.Replica);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                failures++;
                LogWatchFailed(logger, failures, ex.Message);
                await DelayAsync(RetryBackoff.Next(failures, WatchRetryBaseDelay, WatchRetryMaxDelay), stoppingToken).ConfigureAwait(false);
            }
        }
    }

    private void Apply(WatchResult result, Uri? replica)
    {
        if (result.Revoked)
        {
            var reason = $"The control service revoked this workload's identity: {result.RevocationReason ?? "no reason given"}.";
            if (identity.Current is not null)
            {
                LogRevoked(logger, reason);
            }

            identity.Revoke(reason);
            return;
        }

        // Revoked peers are refused from now on, at the handshake and on connections they opened before.
        if (result.RevokedIdentities is { } revoked && identity.SetRevokedPeers(revoked))
        {
            LogRevokedPeers(logger, revoked.Count);
        }

        if (!string.IsNullOrEmpty(result.TrustBundle) && result.TrustBundleVersion != identity.Current?.Bundle.Version)
        {
            var bundle = TrustBundle.FromPem(result.TrustBundle);
            LogBundleChanged(logger, identity.Current?.Bundle.Version ?? "-", bundle.Version, bundle.Roots.Count);
            identity.SetBundle(bundle);
        }

        // The control service issues from another CA now (a CA rotation): renew at once rather than at the usual point,
        // so the old root can be retired as soon as every workload has moved. It names the root it issues under (replicas
        // each sign with their own intermediate of one root: moving to another replica is not a rotation).
        if (result.ActiveIssuer is { Length: > 0 } issuer && identity.Current is { } held
            && !string.Equals(IssuingRoot(held), issuer, StringComparison.Ordinal)
            && !string.Equals(held.Certificate.Issuer, issuer, StringComparison.Ordinal))
        {
            identity.RequestRenewal($"the control service now issues from '{issuer}', this certificate is from '{IssuingRoot(held)}'");
        }

        ApplyCentralPolicy(result, replica);
        state.Apply(result);
    }

    /// <summary>The subject of the root the held certificate chains to: the issuer of its topmost intermediate, or its own issuer.</summary>
    private static string IssuingRoot(WorkloadIdentity held) =>
        held.Intermediates.Count > 0 ? held.Intermediates[^1].Issuer : held.Certificate.Issuer;

    /// <summary>
    /// Central policy rides the same answer. A document applies when its version moved. Nothing else removes the one
    /// held except a deletion newer than it: "unknown" (a replica whose store has not loaded) and "absent" (no document,
    /// no deletion) keep it, so an outage of the control service's store can never turn central authorization off.
    /// Across replicas (the revision is the shared store's, so it orders them): a document older than the one held, from a
    /// replica other than the one that sent the held one, is a replica that lags behind the store, and is not applied.
    /// </summary>
    private void ApplyCentralPolicy(WatchResult result, Uri? replica)
    {
        var centralState = result.CentralPolicyState;
        var held = policies.CentralVersion;
        switch (centralState)
        {
            case "present" when result.PolicyVersion != held:
                if (held is not null && replica != _centralFrom && result.PolicyRevision != 0 && result.PolicyRevision < policies.CentralRevision)
                {
                    if (centralState != _lastCentralState || replica != _lastLagging)
                    {
                        LogLaggingReplicaIgnored(logger, replica?.ToString() ?? "-", result.PolicyVersion ?? "-", result.PolicyRevision, held, policies.CentralRevision);
                    }

                    _lastLagging = replica;
                    break;
                }

                policies.ApplyCentral(result.Policy?.GetRawText(), result.PolicyVersion, result.PolicyRevision);
                _centralFrom = replica;
                break;
            case "present":
                // The same document: later answers of this replica count as its own.
                _centralFrom = replica;
                break;
            case "deleted" when held is not null:
                if (result.PolicyRevision > policies.CentralRevision)
                {
                    LogCentralPolicyDeleted(logger, held, result.PolicyRevision);
                    policies.ApplyCentral(null, null, result.PolicyRevision);
                    _centralFrom = replica;
                }
                else if (centralState != _lastCentralState)
                {
                    LogStaleDeletionIgnored(logger, result.PolicyRevision, held, policies.CentralRevision);
                }

                break;
            case "absent" or "unknown" when held is not null && centralState != _lastCentralState:
                LogCentralPolicyKept(logger, centralState, held);
                break;
        }

        _lastCentralState = centralState;
    }

    private async Task DelayAsync(TimeSpan delay, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(delay, time, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    [LoggerMessage(EventId = 2101, Level = LogLevel.Warning, Message = "The control-channel watch failed ({Failures} in a row); retrying with backoff. Current certificates and policy stay in use: {Error}")]
    private static partial void LogWatchFailed(ILogger logger, int failures, string error);

    [LoggerMessage(EventId = 2102, Level = LogLevel.Information, Message = "Trust bundle changed from {OldVersion} to {NewVersion} ({RootCount} root(s)); new connections use it.")]
    private static partial void LogBundleChanged(ILogger logger, string oldVersion, string newVersion, int rootCount);

    [LoggerMessage(EventId = 2104, Level = LogLevel.Warning, Message = "Waiting for the control service to say what this service's central policy is before serving: {Reason}")]
    private static partial void LogCentralPolicyPending(ILogger logger, string reason);

    [LoggerMessage(EventId = 2105, Level = LogLevel.Warning, Message = "Starting on the local policy only, as Mesh:ControlPlane:StartWithoutCentralPolicy allows: after {Timeout} the control service had not said what the central policy is ({Reason}). It applies when it arrives.")]
    private static partial void LogStartingOnLocalPolicy(ILogger logger, TimeSpan timeout, string reason);

    [LoggerMessage(EventId = 2106, Level = LogLevel.Warning, Message = "The control service answered '{State}' for this service's central policy; keeping central policy {Version}. Only a deletion through the admin API (DELETE /v1/policy/<service>) removes it.")]
    private static partial void LogCentralPolicyKept(ILogger logger, string state, string version);

    [LoggerMessage(EventId = 2107, Level = LogLevel.Warning, Message = "The central policy {Version} was deleted through the admin API (revision {Revision}); the local policy alone is in force now.")]
    private static partial void LogCentralPolicyDeleted(ILogger logger, string version, ulong revision);

    [LoggerMessage(EventId = 2124, Level = LogLevel.Warning, Message = "Ignored central policy {Version} (revision {Revision}) from the control-service replica at {Replica}: the policy held ({HeldVersion}, revision {HeldRevision}) is newer. The replica lags behind the shared store; its answer after it catches up applies.")]
    private static partial void LogLaggingReplicaIgnored(ILogger logger, string replica, string version, ulong revision, string heldVersion, ulong heldRevision);

    [LoggerMessage(EventId = 2108, Level = LogLevel.Warning, Message = "Ignored a deletion of the central policy at revision {Revision}: the policy held ({Version}, revision {HeldRevision}) is newer. A replica that lags behind?")]
    private static partial void LogStaleDeletionIgnored(ILogger logger, ulong revision, string version, ulong heldRevision);

    [LoggerMessage(EventId = 2109, Level = LogLevel.Warning, Message = "The control service's list of revoked identities changed: {Count} revoked. They are refused as callers and as servers from now on.")]
    private static partial void LogRevokedPeers(ILogger logger, int count);

    [LoggerMessage(EventId = 2125, Level = LogLevel.Warning, Message = "No control channel: certificates come from {Issuer} (test mode). No central policy, no revocations and no trust-bundle changes reach this host.")]
    private static partial void LogNoControlChannel(ILogger logger, string issuer);

    [LoggerMessage(EventId = 2103, Level = LogLevel.Critical, Message = "{Reason} Mesh calls and the mesh endpoint fail closed.")]
    private static partial void LogRevoked(ILogger logger, string reason);
}

/// <summary>What the control channel last delivered beyond the bundle (policy, from the live-policy work), and the version applied.</summary>
internal sealed class ControlChannelState
{
    private volatile WatchResult? _last;

    /// <summary>Raised after a watch answer with a new central policy version arrived.</summary>
    public event Action<WatchResult>? PolicyReceived;

    /// <summary>Gets or sets the policy version this workload applied (reported on every poll).</summary>
    public string? PolicyVersion { get; set; }

    public WatchResult? Last => _last;

    internal void Apply(WatchResult result)
    {
        var previous = _last;
        _last = result;
        if (result.PolicyVersion is not null && result.PolicyVersion != previous?.PolicyVersion)
        {
            PolicyReceived?.Invoke(result);
        }
    }
}
