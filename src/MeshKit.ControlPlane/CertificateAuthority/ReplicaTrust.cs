using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using MeshKit.Consul;
using MeshKit.ControlPlane.Coordination;
using MeshKit.ControlPlane.Storage;

namespace MeshKit.ControlPlane.CertificateAuthority;

/// <summary>What one replica's CA trusts and issues under, as it publishes it to the others (public data only).</summary>
/// <param name="Replica">The replica's id.</param>
/// <param name="UpdatedAt">When it published this.</param>
/// <param name="Issuer">The subject of the certificate it signs workload certificates with.</param>
/// <param name="IssuerSha256">That certificate's SHA-256 fingerprint.</param>
/// <param name="RootSha256">The fingerprint of the root its issuer chains to.</param>
/// <param name="Bundle">The fingerprints of the roots in the trust bundle it gives its workloads.</param>
internal sealed record ReplicaCaRecord(string Replica, DateTimeOffset UpdatedAt, string Issuer, string IssuerSha256, string RootSha256, string[] Bundle);

/// <summary>
/// Keeps the replicas' certificate authorities consistent without sharing a key: each replica publishes what it trusts
/// and issues under at <c>&lt;KeyPrefix&gt;ca/replicas/&lt;replica&gt;</c>, and a CA change on any replica (a reload of its
/// files, a generated root activated or removed) is checked against the others' records read from Consul at that moment:
/// it is refused when it would issue under a root another replica does not trust yet, or drop from the bundle a root
/// another replica still issues under. Either would make workloads of two replicas refuse each other. When Consul cannot
/// be read, the change is refused too (nothing is known of the others). A replica whose records disagree with another's
/// at start says so (event 1703), since that is a configuration mistake only the operator can mend.
/// </summary>
internal sealed partial class ReplicaTrust : BackgroundService
{
    /// <summary>How long another replica's record counts after it was published (each replica republishes at a quarter of it).</summary>
    internal static readonly TimeSpan StaleAfter = TimeSpan.FromMinutes(2);

    /// <summary>How old a record gets before the leader deletes it (its replica was killed; a stopping replica deletes its own).</summary>
    internal static readonly TimeSpan DeleteAfter = TimeSpan.FromHours(1);

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly SharedConsul _shared;
    private readonly CertificateAuthority _ca;
    private readonly ReplicaLeadership _leadership;
    private readonly TimeProvider _time;
    private readonly ILogger<ReplicaTrust> _logger;
    private readonly SemaphoreSlim _changed = new(0, 1);
    private string? _reportedSplit;

    public ReplicaTrust(SharedConsul shared, CertificateAuthority ca, ReplicaLeadership leadership, TimeProvider time, ILogger<ReplicaTrust> logger)
    {
        (_shared, _ca, _leadership, _time, _logger) = (shared, ca, leadership, time, logger);
        ca.BundleChanged += _ => Signal();
    }

    private string Prefix => _shared.CaReplicasPrefix;

    /// <summary>Describes a CA's trust as a record of this replica.</summary>
    public ReplicaCaRecord Describe(CaTrust trust) => new(
        _leadership.ReplicaId,
        _time.GetUtcNow(),
        trust.Issuer.Subject,
        Fingerprint(trust.Issuer),
        Fingerprint(trust.IssuingRoot),
        [.. trust.Bundle.Roots.Select(Fingerprint)]);

    /// <summary>
    /// Reads the other replicas' current records (stale ones left out); an empty list when Consul is not configured (one
    /// control service has nobody to agree with).
    /// </summary>
    /// <exception cref="ConsulException">Consul could not be read.</exception>
    public async Task<IReadOnlyList<ReplicaCaRecord>> ReadOthersAsync(CancellationToken cancellationToken)
    {
        if (_shared.Client is not { } consul)
        {
            return [];
        }

        var listed = await consul.ListKeysAsync(Prefix, cancellationToken: cancellationToken).ConfigureAwait(false);
        var now = _time.GetUtcNow();
        var others = new List<ReplicaCaRecord>();
        foreach (var entry in listed.Value)
        {
            if (entry.Key != Prefix + _leadership.ReplicaId && Parse(entry) is { } record && now - record.UpdatedAt <= StaleAfter)
            {
                others.Add(record);
            }
        }

        return others;
    }

    /// <summary>
    /// Says why a replica whose CA would have <paramref name="next"/> cannot work beside <paramref name="others"/>, or
    /// <see langword="null"/> when their workloads accept each other's certificates both ways.
    /// </summary>
    public static string? Conflict(IReadOnlyList<ReplicaCaRecord> others, CaTrust next)
    {
        var bundle = next.Bundle.Roots.Select(Fingerprint).ToHashSet(StringComparer.Ordinal);
        var root = Fingerprint(next.IssuingRoot);
        foreach (var other in others)
        {
            if (!bundle.Contains(other.RootSha256))
            {
                return $"Replica {other.Replica} issues certificates under root {Short(other.RootSha256)} (issuer '{other.Issuer}'), which would not be in this replica's "
                    + "trust bundle: workloads here would refuse its workloads. Move that replica to the new root first (docs/operations.md, \"Rotating the CA with replicas\").";
            }

            if (!other.Bundle.Contains(root, StringComparer.Ordinal))
            {
                return $"Replica {other.Replica} does not trust root {Short(root)} ('{next.IssuingRoot.Subject}') yet: its workloads would refuse certificates issued under it. "
                    + "Add the root to that replica's trust bundle (and reload it) first (docs/operations.md, \"Rotating the CA with replicas\").";
            }
        }

        return null;
    }

    /// <summary>Publishes this replica's record now (after a CA change, so that the next check on another replica sees it).</summary>
    public async Task PublishAsync(CancellationToken cancellationToken)
    {
        if (_shared.Client is { } consul)
        {
            var record = Describe(_ca.Trust);
            await consul.PutKeyAsync(Prefix + record.Replica, JsonSerializer.SerializeToUtf8Bytes(record, Json), cancellationToken: cancellationToken).ConfigureAwait(false);
        }
    }

    public override void Dispose()
    {
        _changed.Dispose();
        base.Dispose();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_shared.Client is null)
        {
            return;
        }

        var failing = false;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    await PublishAsync(stoppingToken).ConfigureAwait(false);
                    if (failing)
                    {
                        failing = false;
                        LogPublishRecovered(_logger, Prefix + _leadership.ReplicaId);
                    }

                    ReportSplit(await ReadOthersAsync(stoppingToken).ConfigureAwait(false));
                    if (_leadership.IsLeader)
                    {
                        await PruneAsync(stoppingToken).ConfigureAwait(false);
                    }
                }
                catch (ConsulException ex)
                {
                    if (!failing)
                    {
                        failing = true;
                        LogPublishFailed(_logger, Prefix + _leadership.ReplicaId, ex.Message);
                    }
                }

                // Again after a CA change, or now and then so that the others never take a quiet replica for a gone one;
                // sooner while Consul cannot be reached.
                await WaitAsync(failing ? TimeSpan.FromSeconds(5) : StaleAfter / 4, stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        if (_shared.Client is { } consul)
        {
            // A replica that stops leaves no record behind to hold up the others' CA changes.
            try
            {
                await consul.DeleteKeyAsync(Prefix + _leadership.ReplicaId, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is ConsulException or OperationCanceledException)
            {
                // It goes stale within StaleAfter anyway.
            }
        }
    }

    private async Task PruneAsync(CancellationToken cancellationToken)
    {
        var listed = await _shared.Client!.ListKeysAsync(Prefix, cancellationToken: cancellationToken).ConfigureAwait(false);
        var now = _time.GetUtcNow();
        foreach (var entry in listed.Value)
        {
            if (Parse(entry) is { } record && now - record.UpdatedAt > DeleteAfter)
            {
                await _shared.Client.DeleteKeyAsync(entry.Key, entry.ModifyIndex, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private void ReportSplit(IReadOnlyList<ReplicaCaRecord> others)
    {
        var conflict = Conflict(others, _ca.Trust);
        if (conflict is not null && conflict != _reportedSplit)
        {
            LogSplit(_logger, conflict);
        }

        _reportedSplit = conflict;
    }

    private async Task WaitAsync(TimeSpan period, CancellationToken cancellationToken)
    {
        using var timeout = new CancellationTokenSource(period, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken);
        try
        {
            await _changed.WaitAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
        }
    }

    private void Signal()
    {
        try
        {
            _changed.Release();
        }
        catch (SemaphoreFullException)
        {
            // A publication is already due.
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private ReplicaCaRecord? Parse(ConsulKeyValue entry)
    {
        try
        {
            return JsonSerializer.Deserialize<ReplicaCaRecord>(entry.Value.Span, Json) is { Replica.Length: > 0, RootSha256.Length: > 0, Bundle: not null } record
                ? record
                : throw new JsonException("a field is missing");
        }
        catch (JsonException ex)
        {
            LogInvalid(_logger, entry.Key, ex.Message);
            return null;
        }
    }

    internal static string Fingerprint(X509Certificate2 certificate) => certificate.GetCertHashString(HashAlgorithmName.SHA256);

    private static string Short(string fingerprint) => fingerprint.Length > 16 ? fingerprint[..16] : fingerprint;

    [LoggerMessage(EventId = 1701, Level = LogLevel.Warning, Message = "Could not publish this replica's CA record to Consul at {Key} ({Error}); CA changes on any replica are refused while the records cannot be read, and this one retries.")]
    private static partial void LogPublishFailed(ILogger logger, string key, string error);

    [LoggerMessage(EventId = 1702, Level = LogLevel.Information, Message = "This replica's CA record is published to Consul at {Key} again.")]
    private static partial void LogPublishRecovered(ILogger logger, string key);

    [LoggerMessage(EventId = 1703, Level = LogLevel.Error, Message = "This replica's CA and another replica's do not trust each other: {Conflict}")]
    private static partial void LogSplit(ILogger logger, string conflict);

    [LoggerMessage(EventId = 1704, Level = LogLevel.Warning, Message = "Ignored the CA record at Consul key {Key}: not a replica's record ({Error}).")]
    private static partial void LogInvalid(ILogger logger, string key, string error);
}
