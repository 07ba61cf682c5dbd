using System.Diagnostics;
using MeshKit.Discovery;
using MeshKit.Policy;

namespace MeshKit.Balancing;

/// <summary>
/// The per-endpoint breaker: after <see cref="OutlierPolicy.ConsecutiveFailures"/> consecutive failures (5xx or connection
/// failures), or <see cref="OutlierPolicy.ConsecutiveConnectFailures"/> consecutive connection failures, an endpoint is ejected for <see cref="OutlierPolicy.BaseEjectionTime"/> times the number of its ejections,
/// capped at <see cref="OutlierPolicy.MaxEjectionTime"/>. At most <see cref="OutlierPolicy.MaxEjectionPercent"/> of a subset
/// is ejected at once (always allowing one when the subset has two or more), and the last healthy endpoint never is.
/// </summary>
internal static class OutlierDetector
{
    /// <summary>Records a failure; returns <see langword="true"/> when it ejected the endpoint.</summary>
    public static bool RecordFailure(EndpointState state, OutlierPolicy policy, ReadOnlySpan<MeshEndpoint> subset, EndpointStateRegistry states, long now, bool connectFailure = false)
    {
        var (failures, connectFailures) = state.RecordFailure(connectFailure);
        var tripped = failures >= policy.ConsecutiveFailures || (connectFailure && connectFailures >= policy.ConsecutiveConnectFailures);
        if (!policy.Enabled || !tripped || state.IsEjected(now) || subset.Length < 2)
        {
            return false;
        }

        var ejected = 0;
        foreach (var endpoint in subset)
        {
            if (states.Find(state.Destination, endpoint.Key) is { } other && other.IsEjected(now))
            {
                ejected++;
            }
        }

        var allowed = Math.Max(1, subset.Length * policy.MaxEjectionPercent / 100);
        if (policy.MaxEjectionPercent == 0 || ejected >= allowed || ejected + 1 >= subset.Length)
        {
            return false;
        }

        var multiplier = state.Ejections + 1;
        var duration = TimeSpan.FromTicks(Math.Min(policy.BaseEjectionTime.Ticks * multiplier, policy.MaxEjectionTime.Ticks));
        state.Eject(now + (long)(duration.TotalSeconds * Stopwatch.Frequency));
        return true;
    }
}
