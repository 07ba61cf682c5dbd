using System.Collections.Concurrent;

namespace MeshKit.ControlPlane.Workloads;

/// <summary>
/// The workloads this control service has seen, by SPIFFE ID and instance. In memory: workloads report again on every
/// poll. With replicas on Consul, <see cref="SharedWorkloads"/> publishes this replica's own workloads and hands it the
/// others' (<see cref="SetOthers"/>), so <see cref="List"/> on any replica shows every workload.
/// </summary>
internal sealed class WorkloadRegistry(TimeProvider time)
{
    private static readonly TimeSpan Retention = TimeSpan.FromHours(24);
    private static readonly TimeSpan PruneInterval = TimeSpan.FromMinutes(1);
    private readonly ConcurrentDictionary<(string SpiffeId, string Instance), WorkloadStatus> _workloads = new();
    private long _lastPrune;
    private long _version;
    private IReadOnlyCollection<WorkloadStatus> _others = [];

    /// <summary>Gets or sets the name of this replica, written on the workloads it records (set when replicas share state).</summary>
    public string? Replica { get; set; }

    /// <summary>
    /// Gets a number that changes whenever a workload this replica records is new or reports something new (a poll that
    /// only moves <see cref="WorkloadStatus.LastSeen"/> does not change it: replicas republish on changes, and their
    /// lists' <c>lastSeen</c> every few minutes, so that 10,000 polling workloads do not rewrite Consul every second).
    /// </summary>
    public long Version => Interlocked.Read(ref _version);

    public void Record(WorkloadStatus status)
    {
        var key = (status.SpiffeId, status.Instance ?? string.Empty);
        var recorded = Replica is { } replica ? status with { Replica = replica } : status;
        var changed = !_workloads.TryGetValue(key, out var previous) || previous with { LastSeen = recorded.LastSeen } != recorded;
        _workloads[key] = recorded;
        if (changed)
        {
            Interlocked.Increment(ref _version);
        }

        Prune();
    }

    /// <summary>Gets the workloads that talk to this replica.</summary>
    public IReadOnlyList<WorkloadStatus> Local()
    {
        Prune();
        return [.. _workloads.Values];
    }

    /// <summary>Replaces what the other replicas reported (their own workloads).</summary>
    public void SetOthers(IReadOnlyCollection<WorkloadStatus> others) => Volatile.Write(ref _others, others);

    public WorkloadStatus? Find(string spiffeId, string? instance) =>
        _workloads.TryGetValue((spiffeId, instance ?? string.Empty), out var status) ? status : null;

    /// <summary>Every workload this replica knows: its own, and those the other replicas reported; an instance that moved
    /// between replicas is listed once, as the replica that heard from it last saw it.</summary>
    public IReadOnlyList<WorkloadStatus> List()
    {
        Prune();
        var merged = new Dictionary<(string, string), WorkloadStatus>(_workloads);
        var cutoff = time.GetUtcNow() - Retention;
        foreach (var other in Volatile.Read(ref _others))
        {
            var key = (other.SpiffeId, other.Instance ?? string.Empty);
            if (other.LastSeen >= cutoff && (!merged.TryGetValue(key, out var known) || known.LastSeen < other.LastSeen))
            {
                merged[key] = other;
            }
        }

        return [.. merged.Values.OrderBy(w => w.SpiffeId, StringComparer.Ordinal).ThenBy(w => w.Instance, StringComparer.Ordinal)];
    }

    public DateTimeOffset Now => time.GetUtcNow();

    private void Prune()
    {
        // A scan of every workload, so at most once a minute, not on every poll.
        var now = time.GetTimestamp();
        var last = Interlocked.Read(ref _lastPrune);
        if ((last != 0 && time.GetElapsedTime(last, now) < PruneInterval) || Interlocked.CompareExchange(ref _lastPrune, now, last) != last)
        {
            return;
        }

        var cutoff = time.GetUtcNow() - Retention;
        foreach (var (key, status) in _workloads)
        {
            if (status.LastSeen < cutoff)
            {
                _workloads.TryRemove(key, out _);
            }
        }
    }
}
