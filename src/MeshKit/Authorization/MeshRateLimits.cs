using System.Collections.Concurrent;
using System.Threading.RateLimiting;
using MeshKit.Policy;

namespace MeshKit.Authorization;

/// <summary>
/// Per-caller rate limits of authorization rules, on System.Threading.RateLimiting: one token bucket per (rule, caller),
/// where the caller is its SPIFFE ID, or its address when it has no mesh identity. Buckets start over when the policy changes.
/// </summary>
internal sealed class MeshRateLimits : IDisposable
{
    private volatile State _state;

    public MeshRateLimits(PolicyWatcher policies)
    {
        _state = new State(policies.Current.Version);
        policies.Changed += snapshot =>
        {
            var old = _state;
            _state = new State(snapshot.Version);
            old.Dispose();
        };
    }

    /// <summary>Takes a permit for <paramref name="caller"/> under <paramref name="rule"/>; <see langword="false"/> when over the limit.</summary>
    public bool TryAcquire(AuthorizationRule rule, string caller, out TimeSpan retryAfter)
    {
        var limit = rule.RateLimit!;
        var limiter = _state.Limiters.GetOrAdd((rule.Index, caller), static (_, l) => new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
        {
            TokenLimit = l.Burst,
            TokensPerPeriod = Math.Max(1, (int)Math.Round(l.PermitsPerSecond * Period(l).TotalSeconds)),
            ReplenishmentPeriod = Period(l),
            QueueLimit = 0,
            AutoReplenishment = true,
        }), limit);
        using var lease = limiter.AttemptAcquire();
        if (lease.IsAcquired)
        {
            retryAfter = default;
            return true;
        }

        retryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? after : TimeSpan.FromSeconds(1);
        return false;
    }

    public void Dispose() => _state.Dispose();

    // Whole tokens per period: below one permit per second, the period stretches instead.
    private static TimeSpan Period(RateLimitPolicy limit) =>
        limit.PermitsPerSecond >= 10 ? TimeSpan.FromMilliseconds(100) : TimeSpan.FromSeconds(Math.Max(1, 1 / limit.PermitsPerSecond));

    private sealed class State(string version) : IDisposable
    {
        public string Version { get; } = version;

        public ConcurrentDictionary<(int Rule, string Caller), TokenBucketRateLimiter> Limiters { get; } = new();

        public void Dispose()
        {
            foreach (var limiter in Limiters.Values)
            {
                limiter.Dispose();
            }
        }
    }
}
