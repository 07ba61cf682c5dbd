using MeshKit.Discovery;
using MeshKit.Policy;

namespace MeshKit.Balancing;

/// <summary>
/// The per-endpoint breaker: after <see cref="OutlierPolicy.ConsecutiveFailures"/> consecutive failures (5xx, gRPC UNAVAILABLE
/// answered Trailers-Only, or connection failures), or <see cref="OutlierPolicy.ConsecutiveConnectFailures"/> consecutive connection failures, an endpoint is ejected for <see cref="OutlierPolicy.BaseEjectionTime"/> times its ejection count,
/// capped at <see cref="OutlierPolicy.MaxEjectionTime"/>. The count grows by one at each ejection and falls by one for each
/// <see cref="OutlierPolicy.BaseEjectionTime"/> the endpoint stays back afterwards (as Envoy's multiplier does per interval). At most <see cref="OutlierPolicy.MaxEjectionPercent"/> of a subset
/// is ejected at once (always allowing one when the subset has two or more), and the last healthy endpoint never is.
/// Time is the caller's <c>now</c>, a timestamp of <see cref="EndpointStateRegistry.Time"/>: nothing here reads a clock.
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

        // The count decays by one for each BaseEjectionTime the endpoint has been back since its last ejection, and stops
        // growing once an ejection lasts MaxEjectionTime, so a flapping endpoint that recovers returns to the base time.
        var ejections = Math.Min(state.EjectionsAt(now, states.ToTimestamp(policy.BaseEjectionTime)) + 1, MaxCount(policy));
        var duration = TimeSpan.FromTicks(Math.Min(policy.BaseEjectionTime.Ticks * ejections, policy.MaxEjectionTime.Ticks));
        state.Eject(now + states.ToTimestamp(duration), ejections);
        return true;
    }

    // The smallest count whose ejection already lasts MaxEjectionTime.
    private static int MaxCount(OutlierPolicy policy) =>
        policy.BaseEjectionTime <= TimeSpan.Zero
            ? 1
            : (int)Math.Clamp((policy.MaxEjectionTime.Ticks + policy.BaseEjectionTime.Ticks - 1) / policy.BaseEjectionTime.Ticks, 1, int.MaxValue);
}
