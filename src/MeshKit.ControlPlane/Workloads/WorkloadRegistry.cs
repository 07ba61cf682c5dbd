using System.Collections.Concurrent;

namespace MeshKit.ControlPlane.Workloads;

/// <summary>What the control service knows of one workload instance.</summary>
public sealed record WorkloadStatus
{
    /// <summary>Gets the workload's SPIFFE ID.</summary>
    public required string SpiffeId { get; init; }

    /// <summary>Gets the instance id the workload reported, when it did (replicas share a SPIFFE ID).</summary>
    public string? Instance { get; init; }

    /// <summary>Gets the serial number (hex) of the certificate the workload holds.</summary>
    public required string CertificateSerial { get; init; }

    /// <summary>Gets when that certificate expires.</summary>
    public required DateTimeOffset NotAfter { get; init; }

    /// <summary>Gets when that certificate became valid, so tools can tell how much of its lifetime is left.</summary>
    public DateTimeOffset? NotBefore { get; init; }

    /// <summary>Gets the distinguished name of that certificate's issuer, so CA rotation can tell which root a workload's certificate comes from.</summary>
    public string? CertificateIssuer { get; init; }

    /// <summary>Gets the trust bundle version the workload runs, when it reported one.</summary>
    public string? BundleVersion { get; init; }

    /// <summary>Gets the policy version the workload applied, when it reported one.</summary>
    public string? PolicyVersion { get; init; }

    /// <summary>Gets the version of the central policy the workload last received, when it reported one.</summary>
    public string? CentralPolicyVersion { get; init; }

    /// <summary>Gets the issuer (subject of the CA) of the workload's certificate, to see which root a workload is on during a CA rotation.</summary>
    public string? Issuer { get; init; }

    /// <summary>Gets the endpoints the workload's outlier detection has ejected, as <c>orders=10.0.0.1:443,...;inventory=...</c>.</summary>
    public string? EjectedEndpoints { get; init; }

    /// <summary>Gets the service version the workload reported (its <c>Mesh:Service:Version</c>).</summary>
    public string? ServiceVersion { get; init; }

    /// <summary>Gets when the control service last heard from the workload.</summary>
    public required DateTimeOffset LastSeen { get; init; }
}

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
