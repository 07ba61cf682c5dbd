using MeshKit.Hosting;
using MeshKit.Identity;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshKit.ControlChannel;

/// <summary>
/// The workload's one long poll on the control service (Consul-style <c>index</c> and <c>wait</c>). It reports the
/// workload's status on every poll and applies what comes back: trust-bundle changes and revocations. A change arrives on
/// the poll that is already waiting; while nothing changes the control service sees one request per wait period.
/// </summary>
internal sealed partial class ControlChannelWatcher(
    IOptions<MeshOptions> options,
    ControlPlaneClient controlPlane,
    WorkloadIdentitySource identity,
    ControlChannelState state,
    MeshKit.Policy.PolicyWatcher policies,
    MeshKit.Balancing.EndpointStateRegistry endpointStates,
    TimeProvider time,
    ILogger<ControlChannelWatcher> logger) : BackgroundService
{
    private static readonly TimeSpan NudgeInterval = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan WatchRetryBaseDelay = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan WatchRetryMaxDelay = TimeSpan.FromSeconds(30);
    private CancellationTokenSource? _poll;
    private long _lastNudge;

    /// <summary>Reports a status change (an ejection) now rather than at the next poll: ends the waiting poll, at most once a second.</summary>
    private void Nudge()
    {
        var now = time.GetTimestamp();
        var last = Interlocked.Read(ref _lastNudge);
        if (last != 0 && time.GetElapsedTime(last, now) < NudgeInterval)
        {
            return;
        }

        Interlocked.Exchange(ref _lastNudge, now);
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

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var meshOptions = options.Value;
        var wait = meshOptions.ControlPlane.WatchWait;
        endpointStates.Ejected += Nudge;

        // A new certificate: move the waiting poll onto a connection that presents it, and report the new serial now.
        identity.Changed += _ => Nudge();
        long index = 0;
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
                var report = new WorkloadReport(meshOptions.Service.InstanceId!, meshOptions.Service.Version, current.Bundle.Version, policies.Current.Version, policies.CentralVersion, EjectedSummary());
                using var poll = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                Volatile.Write(ref _poll, poll);
                WatchResult result;
                long next;
                try
                {
                    (result, next) = await controlPlane.WatchAsync(index, wait, report, poll.Token).ConfigureAwait(false);
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


                // Consul's rules: an index that goes backwards means the server restarted or was replaced; start over.
                index = next < index ? 0 : next;
                failures = 0;
                Apply(result);
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

    private void Apply(WatchResult result)
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

        if (!string.IsNullOrEmpty(result.TrustBundle) && result.TrustBundleVersion != identity.Current?.Bundle.Version)
        {
            var bundle = TrustBundle.FromPem(result.TrustBundle);
            LogBundleChanged(logger, identity.Current?.Bundle.Version ?? "-", bundle.Version, bundle.Roots.Count);
            identity.SetBundle(bundle);
        }

        // The control service issues from another CA now (a CA rotation): renew at once rather than at the usual point,
        // so the old root can be retired as soon as every workload has moved.
        if (result.ActiveIssuer is { Length: > 0 } issuer && identity.Current is { } held
            && !string.Equals(held.Certificate.Issuer, issuer, StringComparison.Ordinal))
        {
            identity.RequestRenewal($"the control service now issues from '{issuer}', this certificate is from '{held.Certificate.Issuer}'");
        }

        // Central policy rides the same answer; apply it when its version moved (including to "none").
        if (result.PolicyVersion != policies.CentralVersion)
        {
            policies.ApplyCentral(result.Policy?.GetRawText(), result.PolicyVersion);
        }

        state.Apply(result);
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
