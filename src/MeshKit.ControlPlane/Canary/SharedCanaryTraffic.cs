using System.Text.Json;
using System.Text.Json.Serialization;
using MeshKit.Consul;
using MeshKit.ControlPlane.Coordination;
using MeshKit.ControlPlane.Storage;

namespace MeshKit.ControlPlane.Canary;

/// <summary>One replica's canary reports as it publishes them: totals since it started, which only grow.</summary>
internal sealed record ReplicaCanaryTraffic(
    [property: JsonPropertyName("replica")] string Replica,
    [property: JsonPropertyName("startedAt")] DateTimeOffset StartedAt,
    [property: JsonPropertyName("updatedAt")] DateTimeOffset UpdatedAt,
    [property: JsonPropertyName("series")] IReadOnlyList<SharedSeries> Series)
{
    /// <summary>Gets one series' totals, or none.</summary>
    public SubsetFigures Find(string caller, string destination, string route, string subset) =>
        Series.FirstOrDefault(s => s.Caller == caller && s.Destination == destination && s.Route == route && s.Subset == subset)?.Figures ?? SubsetFigures.Empty;
}

/// <summary>
/// The canary reports across replicas: a workload reports to the replica it talks to, so each replica publishes the totals
/// of what it received under <c>&lt;KeyPrefix&gt;canary-traffic/&lt;replica&gt;</c> (at most once a second, when they
/// changed) and follows the others' with a blocking query; the leader adds the others' growth since its last check to its
/// own figures (<see cref="CanaryController"/>). Totals rather than reports: a publication that is late or lost loses
/// nothing, it only moves counts to the next check. A replica that stops publishing is left out after
/// <see cref="StaleAfter"/>; the leader deletes keys older than an hour.
/// </summary>
internal sealed partial class SharedCanaryTraffic : BackgroundService
{
    internal static readonly TimeSpan PublishPeriod = TimeSpan.FromSeconds(1);
    internal static readonly TimeSpan StaleAfter = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan DeleteAfter = TimeSpan.FromHours(1);
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly SharedConsul _shared;
    private readonly CanaryTrafficStore _traffic;
    private readonly ReplicaLeadership _leadership;
    private readonly TimeProvider _time;
    private readonly ILogger<SharedCanaryTraffic> _logger;
    private IReadOnlyList<ReplicaCanaryTraffic> _others = [];

    public SharedCanaryTraffic(SharedConsul shared, CanaryTrafficStore traffic, ReplicaLeadership leadership, TimeProvider time, ILogger<SharedCanaryTraffic> logger) =>
        (_shared, _traffic, _leadership, _time, _logger) = (shared, traffic, leadership, time, logger);

    /// <summary>Gets the other replicas' latest totals (none without Consul).</summary>
    public IReadOnlyList<ReplicaCanaryTraffic> Others => Volatile.Read(ref _others);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_shared.Client is not { } consul)
        {
            return;
        }

        await Task.WhenAll(PublishAsync(consul, stoppingToken), FollowAsync(consul, stoppingToken)).ConfigureAwait(false);
    }

    private async Task PublishAsync(ConsulClient consul, CancellationToken cancellationToken)
    {
        var key = _shared.CanaryTrafficPrefix + _leadership.ReplicaId;
        long published = -1;
        var lastWrite = DateTimeOffset.MinValue;
        var failing = false;
        using var timer = new PeriodicTimer(PublishPeriod, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                var version = _traffic.Version;
                var now = _time.GetUtcNow();
                if (version == 0 || (version == published && now - lastWrite < StaleAfter / 4))
                {
                    continue; // nothing received yet, or nothing new (republished now and then, so it never looks gone)
                }

                try
                {
                    var body = JsonSerializer.SerializeToUtf8Bytes(new ReplicaCanaryTraffic(_leadership.ReplicaId, _traffic.Since, now, _traffic.Totals()), Json);
                    await consul.PutKeyAsync(key, body, cancellationToken: cancellationToken).ConfigureAwait(false);
                    (published, lastWrite) = (version, now);
                    failing = false;
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

    private async Task FollowAsync(ConsulClient consul, CancellationToken cancellationToken)
    {
        var own = _shared.CanaryTrafficPrefix + _leadership.ReplicaId;
        var query = consul.CreateKeyValueQuery(_shared.CanaryTrafficPrefix, recurse: true);
        try
        {
            await foreach (var result in query.WatchAsync(cancellationToken).ConfigureAwait(false))
            {
                var now = _time.GetUtcNow();
                Volatile.Write(ref _others, [.. result.Value
                    .Where(e => e.Key != own)
                    .Select(Parse)
                    .OfType<ReplicaCanaryTraffic>()
                    .Where(t => now - t.UpdatedAt <= StaleAfter)]);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private async Task PruneAsync(ConsulClient consul, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var listed = await consul.ListKeysAsync(_shared.CanaryTrafficPrefix, cancellationToken: cancellationToken).ConfigureAwait(false);
        foreach (var entry in listed.Value)
        {
            if (Parse(entry) is { } traffic && now - traffic.UpdatedAt > DeleteAfter)
            {
                await consul.DeleteKeyAsync(entry.Key, entry.ModifyIndex, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private ReplicaCanaryTraffic? Parse(ConsulKeyValue entry)
    {
        try
        {
            return JsonSerializer.Deserialize<ReplicaCanaryTraffic>(entry.Value.Span, Json);
        }
        catch (JsonException ex)
        {
            LogInvalid(_logger, entry.Key, ex.Message);
            return null;
        }
    }

    [LoggerMessage(EventId = 1512, Level = LogLevel.Warning, Message = "Could not publish this replica's canary reports to Consul at {Key} ({Error}); the leader's canaries count them once it can.")]
    private static partial void LogPublishFailed(ILogger logger, string key, string error);

    [LoggerMessage(EventId = 1513, Level = LogLevel.Warning, Message = "Ignored the canary reports at Consul key {Key}: not a replica's totals ({Error}).")]
    private static partial void LogInvalid(ILogger logger, string key, string error);
}
