using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using MeshKit.Consul;
using MeshKit.ControlPlane.Coordination;
using MeshKit.ControlPlane.Storage;

namespace MeshKit.ControlPlane.Workloads;

/// <summary>One replica's workloads as it publishes them in Consul KV.</summary>
internal sealed record ReplicaWorkloads(
    [property: JsonPropertyName("replica")] string Replica,
    [property: JsonPropertyName("updatedAt")] DateTimeOffset UpdatedAt,
    [property: JsonPropertyName("workloads")] IReadOnlyList<WorkloadStatus> Workloads);

/// <summary>
/// The workload registry across replicas (issue "replicated control service", shared state): each replica publishes the
/// workloads that talk to it under <c>&lt;KeyPrefix&gt;workloads/&lt;replica&gt;</c> (at most once a
/// <see cref="PublishPeriod"/>, when something changed) and follows the others' with a blocking query, so
/// <c>GET /v1/workloads</c> on any replica shows every workload within about a second. A replica that stops publishing is
/// left out after <see cref="StaleAfter"/>; the leading replica deletes keys older than <see cref="DeleteAfter"/> (pruning
/// is a leader-only step). Consul being unreachable only means the others' workloads are as last read.
/// </summary>
internal sealed partial class SharedWorkloads : BackgroundService
{
    private readonly SharedConsul _shared;
    private readonly WorkloadRegistry _registry;
    private readonly ReplicaLeadership _leadership;
    private readonly TimeProvider _time;
    private readonly ILogger<SharedWorkloads> _logger;

    public SharedWorkloads(SharedConsul shared, WorkloadRegistry registry, ReplicaLeadership leadership, TimeProvider time, ILogger<SharedWorkloads> logger)
    {
        (_shared, _registry, _leadership, _time, _logger) = (shared, registry, leadership, time, logger);
        if (shared.Client is not null)
        {
            // Before the host serves: every workload recorded here is named with this replica.
            registry.Replica = leadership.ReplicaId;
        }
    }

    /// <summary>How often this replica's workloads are published when they changed (a watch poll changes them).</summary>
    internal static readonly TimeSpan PublishPeriod = TimeSpan.FromSeconds(1);

    /// <summary>How long another replica's list counts after its last publication (it publishes at least this often while it has workloads).</summary>
    internal static readonly TimeSpan StaleAfter = TimeSpan.FromMinutes(10);

    /// <summary>How old a replica's key gets before the leader deletes it.</summary>
    internal static readonly TimeSpan DeleteAfter = TimeSpan.FromHours(1);

    /// <summary>
    /// The largest value written: Consul refuses values over 512 KiB (<c>limits.kv_max_value_size</c>), so a long list is
    /// written as several pages, <c>&lt;replica&gt;</c>, <c>&lt;replica&gt;/1</c>, <c>&lt;replica&gt;/2</c>...
    /// </summary>
    internal const int MaxPageBytes = 400 * 1024;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_shared.Client is not { } consul)
        {
            return; // one control service: its registry is the registry
        }

        await Task.WhenAll(PublishAsync(consul, stoppingToken), FollowAsync(consul, stoppingToken)).ConfigureAwait(false);
    }

    private async Task PublishAsync(ConsulClient consul, CancellationToken cancellationToken)
    {
        var key = _shared.WorkloadsPrefix + _leadership.ReplicaId;
        var pagesWritten = 0;
        long published = -1;
        var lastWrite = DateTimeOffset.MinValue;
        var failing = false;
        using var timer = new PeriodicTimer(PublishPeriod, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                var version = _registry.Version;
                var now = _time.GetUtcNow();

                // Also republished now and then when nothing changed, so the others never take a quiet replica for a gone one.
                if (version == published && now - lastWrite < StaleAfter / 4)
                {
                    continue;
                }

                try
                {
                    var pages = Pages(_registry.Local(), now);
                    for (var page = 0; page < pages.Count; page++)
                    {
                        await consul.PutKeyAsync(PageKey(key, page), pages[page], cancellationToken: cancellationToken).ConfigureAwait(false);
                    }

                    // Pages of an earlier, longer list would still be read as this replica's.
                    for (var page = pages.Count; page < pagesWritten; page++)
                    {
                        await consul.DeleteKeyAsync(PageKey(key, page), cancellationToken: cancellationToken).ConfigureAwait(false);
                    }

                    pagesWritten = pages.Count;
                    (published, lastWrite) = (version, now);
                    if (failing)
                    {
                        failing = false;
                        LogPublishRecovered(_logger, key);
                    }

                    if (_leadership.IsLeader)
                    {
                        await PruneAsync(consul, now, cancellationToken).ConfigureAwait(false);
                    }
                }
                catch (ConsulException ex)
                {
                    if (!failing)
                    {
                        failing = true;
                        LogPublishFailed(_logger, key, ex.Message);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>The list as JSON pages of at most <see cref="MaxPageBytes"/> each (one page for up to about a thousand workloads).</summary>
    private List<byte[]> Pages(IReadOnlyList<WorkloadStatus> workloads, DateTimeOffset now)
    {
        var whole = JsonSerializer.SerializeToUtf8Bytes(new ReplicaWorkloads(_leadership.ReplicaId, now, workloads), Json);
        if (whole.Length <= MaxPageBytes || workloads.Count <= 1)
        {
            return [whole];
        }

        // Split evenly by count, with room to spare; a page that still comes out too big is split again.
        var count = (int)Math.Ceiling(whole.Length * 1.25 / MaxPageBytes);
        var size = (workloads.Count + count - 1) / count;
        var pages = new List<byte[]>();
        for (var start = 0; start < workloads.Count; start += size)
        {
            var slice = workloads.Skip(start).Take(size).ToList();
            pages.AddRange(Pages(slice, now));
        }

        return pages;
    }

    private static string PageKey(string key, int page) => page == 0 ? key : $"{key}/{page}";

    private async Task FollowAsync(ConsulClient consul, CancellationToken cancellationToken)
    {
        var query = consul.CreateKeyValueQuery(_shared.WorkloadsPrefix, recurse: true);
        try
        {
            await foreach (var result in query.WatchAsync(cancellationToken).ConfigureAwait(false))
            {
                var now = _time.GetUtcNow();
                var others = new List<WorkloadStatus>();
                foreach (var entry in result.Value)
                {
                    if (Parse(entry) is not { } list || list.Replica == _leadership.ReplicaId || now - list.UpdatedAt > StaleAfter)
                    {
                        continue;
                    }

                    others.AddRange(list.Workloads.Select(w => w with { Replica = list.Replica }));
                }

                _registry.SetOthers(others);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private async Task PruneAsync(ConsulClient consul, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var listed = await consul.ListKeysAsync(_shared.WorkloadsPrefix, cancellationToken: cancellationToken).ConfigureAwait(false);
        foreach (var entry in listed.Value)
        {
            if (Parse(entry) is { } list && now - list.UpdatedAt > DeleteAfter)
            {
                await consul.DeleteKeyAsync(entry.Key, entry.ModifyIndex, cancellationToken).ConfigureAwait(false);
                LogPruned(_logger, list.Replica, list.UpdatedAt);
            }
        }
    }

    private ReplicaWorkloads? Parse(ConsulKeyValue entry)
    {
        try
        {
            return JsonSerializer.Deserialize<ReplicaWorkloads>(entry.Value.Span, Json);
        }
        catch (JsonException ex)
        {
            LogInvalid(_logger, entry.Key, ex.Message);
            return null;
        }
    }

    [LoggerMessage(EventId = 1601, Level = LogLevel.Warning, Message = "Could not publish this replica's workloads to Consul at {Key} ({Error}); the other replicas list them as last published until it can.")]
    private static partial void LogPublishFailed(ILogger logger, string key, string error);

    [LoggerMessage(EventId = 1602, Level = LogLevel.Information, Message = "This replica's workloads are published to Consul at {Key} again.")]
    private static partial void LogPublishRecovered(ILogger logger, string key);

    [LoggerMessage(EventId = 1603, Level = LogLevel.Warning, Message = "Ignored the workloads at Consul key {Key}: not a replica's list ({Error}).")]
    private static partial void LogInvalid(ILogger logger, string key, string error);

    [LoggerMessage(EventId = 1604, Level = LogLevel.Information, Message = "Deleted the workloads of replica {Replica}, last published {UpdatedAt:o}: it is gone.")]
    private static partial void LogPruned(ILogger logger, string replica, DateTimeOffset updatedAt);
}
