using System.Collections.Concurrent;

namespace MeshKit.ControlPlane.Workloads;

/// <summary>The workloads this control service has seen, by SPIFFE ID and instance. In memory: workloads report again on every poll.</summary>
internal sealed class WorkloadRegistry(TimeProvider time)
{
    private static readonly TimeSpan Retention = TimeSpan.FromHours(24);
    private static readonly TimeSpan PruneInterval = TimeSpan.FromMinutes(1);
    private readonly ConcurrentDictionary<(string SpiffeId, string Instance), WorkloadStatus> _workloads = new();
    private long _lastPrune;

    public void Record(WorkloadStatus status)
    {
        _workloads[(status.SpiffeId, status.Instance ?? string.Empty)] = status;
        Prune();
    }

    public WorkloadStatus? Find(string spiffeId, string? instance) =>
        _workloads.TryGetValue((spiffeId, instance ?? string.Empty), out var status) ? status : null;

    public IReadOnlyList<WorkloadStatus> List()
    {
        Prune();
        return [.. _workloads.Values.OrderBy(w => w.SpiffeId, StringComparer.Ordinal).ThenBy(w => w.Instance, StringComparer.Ordinal)];
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
