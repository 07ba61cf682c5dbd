using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using MeshKit.Policy;
using MeshKit.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace MeshKit.Authorization;

/// <summary>What <see cref="MeshRateLimits.TryAcquire"/> decided.</summary>
internal enum RateLimitOutcome
{
    /// <summary>The caller had a permit; let the request through.</summary>
    Acquired,

    /// <summary>The caller is over its rate.</summary>
    Limited,

    /// <summary>
    /// The rule already tracks <see cref="RateLimitPolicy.MaxCallers"/> callers, none of them idle, so a new caller is
    /// refused (fails closed) until some fall idle.
    /// </summary>
    CallersFull,
}

/// <summary>
/// Per-caller rate limits of authorization rules: one token bucket per (rule, caller), where the caller is its SPIFFE ID,
/// or its address when it has no mesh identity.
/// </summary>
/// <remarks>
/// <para>
/// Each bucket is a single timestamp (the generic cell rate algorithm: the time at which the bucket is full again), updated
/// with one compare-and-swap and refilled by arithmetic on the clock, so it needs no timer, no lock and no disposal.
/// A bucket that is full is indistinguishable from no bucket, so full buckets are dropped freely: when a rule's table
/// doubles in size, and when it reaches <see cref="RateLimitPolicy.MaxCallers"/> (on the request,
/// at most once per <see cref="FullSweepInterval"/>). If the table is still full, new callers are refused with 429 while
/// the callers already tracked keep their buckets; nothing is ever let through for lack of room.
/// </para>
/// <para>
/// System.Threading.RateLimiting's <c>PartitionedRateLimiter</c> was measured and not used: it takes one global lock
/// per acquire, has no bound on partitions, scans every partition every 100 ms (about a tenth of a core with 100,000
/// callers), keeps an idle partition for 10 s, and can dispose an evicted limiter a request has just looked up (its idle
/// check and the request's acquire are not one step).
/// </para>
/// <para>
/// A policy change keeps the buckets of every rule whose name and limit did not change; a changed or new rule starts
/// afresh. Nothing is disposed, so a request racing a policy change can never meet a disposed limiter.
/// </para>
/// </remarks>
internal sealed partial class MeshRateLimits
{
    /// <summary>How often a rule whose table is full is swept for idle callers, at most.</summary>
    internal static readonly TimeSpan FullSweepInterval = TimeSpan.FromSeconds(1);

    private const int MinTrimThreshold = 1024;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private volatile Rules _rules = Rules.Empty;

    /// <summary>Initializes the limits for the policy in force and follows its changes.</summary>
    /// <param name="policies">The policy.</param>
    /// <param name="metrics">MeshKit's metrics, for the gauge of tracked callers.</param>
    /// <param name="time">The clock.</param>
    /// <param name="logger">The logger.</param>
    public MeshRateLimits(PolicyWatcher policies, MeshMetrics metrics, TimeProvider time, ILogger<MeshRateLimits> logger)
        : this(time, logger)
    {
        // The policy in force is read under the lock, so whichever of two racing updates runs last applies the newest.
        policies.Changed += _ =>
        {
            lock (_gate)
            {
                ApplyLocked(policies.Current.Authorization);
            }
        };
        lock (_gate)
        {
            ApplyLocked(policies.Current.Authorization);
        }

        metrics.Meter.CreateObservableGauge("mesh.server.rate_limit.callers", Measure, "{caller}", "Callers whose rate-limit bucket a rule tracks now (bounded by the rule's RateLimit:MaxCallers).");
    }

    /// <summary>Initializes limits with no rules; <see cref="Apply"/> gives them their rules.</summary>
    /// <param name="time">The clock.</param>
    /// <param name="logger">The logger.</param>
    internal MeshRateLimits(TimeProvider time, ILogger? logger = null)
    {
        _time = time;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>Gets the number of callers tracked now, over all rules (for tests and the gauge).</summary>
    internal int CallerCount
    {
        get
        {
            var count = 0;
            foreach (var entry in _rules.ByIndex)
            {
                count += entry?.Limit.Count ?? 0;
            }

            return count;
        }
    }

    /// <summary>
    /// The rate-limit key of a request's caller: its SPIFFE ID string, or the connection's address object as it is (no key
    /// is built per request).
    /// </summary>
    internal static object CallerKey(Identity.SpiffeId? caller, Microsoft.AspNetCore.Http.HttpContext context) =>
        (object?)caller?.Value ?? context.Connection.RemoteIpAddress ?? (object)"unknown";

    /// <summary>
    /// Takes a permit for a request's caller under the rule that allowed it; when refused, says why in a sentence for the
    /// 429 answer. Both places that decide authorization (routed and unrouted requests) use this.
    /// </summary>
    /// <returns><see langword="true"/> when the request may go on.</returns>
    internal bool TryAdmit(AuthorizationRule rule, object caller, out TimeSpan retryAfter, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? refusal)
    {
        var outcome = TryAcquire(rule, caller, out retryAfter);
        if (outcome == RateLimitOutcome.Acquired)
        {
            refusal = null;
            return true;
        }

        var limit = rule.RateLimit!;
        var who = caller.ToString() ?? "unknown";
        refusal = outcome == RateLimitOutcome.CallersFull
            ? $"Rule '{rule.Name}' already tracks its maximum of {limit.MaxCallers} callers, all active; {who} is refused until some fall idle."
            : $"{who} is over the rate limit of rule '{rule.Name}' ({limit.PermitsPerSecond}/s, burst {limit.Burst}).";
        return false;
    }

    /// <summary>
    /// Takes a permit for <paramref name="caller"/> under <paramref name="rule"/>. Allocates nothing unless the caller is
    /// new to the rule.
    /// </summary>
    /// <param name="rule">The allowing rule; it has a <see cref="AuthorizationRule.RateLimit"/>.</param>
    /// <param name="caller">The caller's key: its SPIFFE ID string, or its <see cref="System.Net.IPAddress"/>. Compared by value.</param>
    /// <param name="retryAfter">When refused, how long until a permit is likely.</param>
    /// <returns>What was decided.</returns>
    public RateLimitOutcome TryAcquire(AuthorizationRule rule, object caller, out TimeSpan retryAfter)
    {
        var limit = Find(rule);
        var now = _time.GetTimestamp();
        while (true)
        {
            if (!limit.Buckets.TryGetValue(caller, out var bucket))
            {
                var added = limit.TryAdd(caller, now, _logger);
                if (added == RateLimitOutcome.CallersFull)
                {
                    retryAfter = FullSweepInterval;
                    return RateLimitOutcome.CallersFull;
                }

                if (added == RateLimitOutcome.Acquired)
                {
                    retryAfter = default;
                    return RateLimitOutcome.Acquired;
                }

                continue; // another request added this caller first
            }

            var outcome = limit.TryTake(bucket, now, out var wait);
            if (outcome == Bucket.Retired)
            {
                // A sweep dropped this bucket as idle between the lookup and the take: start the caller a fresh one.
                limit.Remove(caller, bucket);
                continue;
            }

            retryAfter = outcome == Bucket.Taken ? default : _time.GetElapsedTime(0, wait);
            return outcome == Bucket.Taken ? RateLimitOutcome.Acquired : RateLimitOutcome.Limited;
        }
    }

    /// <summary>
    /// Takes the rules of a new policy: a rule whose name and limit are unchanged keeps its callers' buckets; the others
    /// start afresh. Old tables are simply dropped (nothing to dispose), so requests still using them finish normally.
    /// </summary>
    /// <param name="policy">The authorization policy now in force.</param>
    internal void Apply(MeshAuthorizationPolicy policy)
    {
        lock (_gate)
        {
            ApplyLocked(policy);
        }
    }

    private void ApplyLocked(MeshAuthorizationPolicy policy)
    {
        var old = _rules;
        var byIndex = new RuleEntry?[policy.Rules.Length];
        var byIdentity = new ConcurrentDictionary<(string, RateLimitPolicy), RuleLimit>();
        foreach (var rule in policy.Rules)
        {
            if (rule.RateLimit is not { } rate || (uint)rule.Index >= (uint)byIndex.Length)
            {
                continue;
            }

            var identity = (rule.Name, rate);
            RuleLimit limit;
            if (byIdentity.ContainsKey(identity))
            {
                // A second rule with the same name and limit: its own buckets, which start afresh on each change.
                limit = new RuleLimit(rule.Name, rate, _time.TimestampFrequency);
            }
            else
            {
                limit = old.ByIdentity.TryGetValue(identity, out var kept) ? kept : new RuleLimit(rule.Name, rate, _time.TimestampFrequency);
                byIdentity[identity] = limit;
            }

            byIndex[rule.Index] = new RuleEntry(rule, limit);
        }

        _rules = new Rules(byIndex, byIdentity);
    }

    private RuleLimit Find(AuthorizationRule rule)
    {
        var rules = _rules;
        var byIndex = rules.ByIndex;
        if ((uint)rule.Index < (uint)byIndex.Length && byIndex[rule.Index] is { } entry && ReferenceEquals(entry.Rule, rule))
        {
            return entry.Limit;
        }

        // The request was judged by a policy a moment newer (its change not applied here yet) or older than ours: the same
        // rule identity shares its buckets; an identity unknown here gets a table that the next Apply adopts if it matches.
        return rules.ByIdentity.GetOrAdd((rule.Name, rule.RateLimit!), static (key, frequency) => new RuleLimit(key.Item1, key.Item2, frequency), _time.TimestampFrequency);
    }

    private IEnumerable<Measurement<int>> Measure()
    {
        foreach (var entry in _rules.ByIndex)
        {
            if (entry is not null)
            {
                yield return new Measurement<int>(entry.Limit.Count, new KeyValuePair<string, object?>("mesh.authorization.rule", entry.Limit.Name));
            }
        }
    }

    [LoggerMessage(EventId = 7003, Level = LogLevel.Warning, Message = "Rule {Rule} tracks its maximum of {MaxCallers} callers and none is idle: new callers are refused (429) until some are (Mesh:Authorization:Rules:*:RateLimit:MaxCallers).")]
    private static partial void LogCallersFull(ILogger logger, string rule, int maxCallers);

    private sealed record RuleEntry(AuthorizationRule Rule, RuleLimit Limit);

    private sealed class Rules(RuleEntry?[] byIndex, ConcurrentDictionary<(string, RateLimitPolicy), RuleLimit> byIdentity)
    {
        public static readonly Rules Empty = new([], new());

        public RuleEntry?[] ByIndex { get; } = byIndex;

        public ConcurrentDictionary<(string, RateLimitPolicy), RuleLimit> ByIdentity { get; } = byIdentity;
    }

    /// <summary>One token bucket: the time (a <see cref="TimeProvider"/> timestamp) at which it is full again.</summary>
    private sealed class Bucket(long fullAt)
    {
        public const int Taken = 0;
        public const int Refused = 1;
        public const int Retired = 2;

        /// <summary>Marks a bucket a sweep removed; a request that meets it looks the caller up again.</summary>
        public const long RetiredMark = long.MinValue;

        public long FullAt = fullAt;
    }

    /// <summary>The buckets of one rule's limit, bounded by its <see cref="RateLimitPolicy.MaxCallers"/>.</summary>
    private sealed class RuleLimit
    {
        private readonly long _interval;
        private readonly long _tolerance;
        private readonly long _sweepInterval;
        private int _count;
        private int _sweeping;
        private long _nextFullSweep = long.MinValue;
        private int _trimAt = MinTrimThreshold;

        public RuleLimit(string name, RateLimitPolicy rate, long frequency)
        {
            Name = name;
            MaxCallers = rate.MaxCallers;

            // One permit every interval; a full bucket holds Burst permits, so its debt may reach Burst intervals.
            _interval = (long)Math.Clamp(Math.Round(frequency / rate.PermitsPerSecond), 1, long.MaxValue / 4 / Math.Max(1, rate.Burst));
            _tolerance = _interval * Math.Max(1, rate.Burst);
            _sweepInterval = (long)(FullSweepInterval.TotalSeconds * frequency);
        }

        public string Name { get; }

        public int MaxCallers { get; }

        public ConcurrentDictionary<object, Bucket> Buckets { get; } = new();

        public int Count => Volatile.Read(ref _count);

        /// <summary>Takes a permit from <paramref name="bucket"/>; on refusal, <paramref name="wait"/> is how long (in timestamp units) until one is there.</summary>
        public int TryTake(Bucket bucket, long now, out long wait)
        {
            while (true)
            {
                var fullAt = Volatile.Read(ref bucket.FullAt);
                if (fullAt == Bucket.RetiredMark)
                {
                    wait = 0;
                    return Bucket.Retired;
                }

                var next = Math.Max(fullAt, now) + _interval;
                if (next - now > _tolerance)
                {
                    wait = next - _tolerance - now;
                    return Bucket.Refused;
                }

                if (Interlocked.CompareExchange(ref bucket.FullAt, next, fullAt) == fullAt)
                {
                    wait = 0;
                    return Bucket.Taken;
                }
            }
        }

        /// <summary>Adds a bucket for a new caller with its first permit taken, within <see cref="MaxCallers"/>.</summary>
        /// <returns><see cref="RateLimitOutcome.Acquired"/>, <see cref="RateLimitOutcome.CallersFull"/>, or <see cref="RateLimitOutcome.Limited"/> when another request added the caller first (look it up again).</returns>
        public RateLimitOutcome TryAdd(object caller, long now, ILogger logger)
        {
            // Reserve the slot first, so concurrent newcomers can never take the table past its bound.
            if (Interlocked.Increment(ref _count) > MaxCallers)
            {
                Interlocked.Decrement(ref _count);
                if (!SweepWhenFull(now, logger))
                {
                    return RateLimitOutcome.CallersFull;
                }

                if (Interlocked.Increment(ref _count) > MaxCallers)
                {
                    Interlocked.Decrement(ref _count);
                    return RateLimitOutcome.CallersFull;
                }
            }

            if (!Buckets.TryAdd(caller, new Bucket(now + _interval)))
            {
                Interlocked.Decrement(ref _count);
                return RateLimitOutcome.Limited;
            }

            if (Volatile.Read(ref _count) >= Volatile.Read(ref _trimAt) && Interlocked.CompareExchange(ref _sweeping, 1, 0) == 0)
            {
                // Grown to twice what the last sweep left: drop the idle callers. Amortised like a hash table's growth
                // (the dictionary's own resize is the same O(n) on a request), and done here rather than on a timer.
                SweepAndRelease(now);
            }

            return RateLimitOutcome.Acquired;
        }

        public void Remove(object caller, Bucket bucket)
        {
            if (Buckets.TryRemove(new KeyValuePair<object, Bucket>(caller, bucket)))
            {
                Interlocked.Decrement(ref _count);
            }
        }

        // At the bound: sweep now, on this request, unless a sweep is running or one found the table full less than
        // FullSweepInterval ago (so a table full of active callers costs one scan a second, not one per newcomer).
        private bool SweepWhenFull(long now, ILogger logger)
        {
            if (now < Volatile.Read(ref _nextFullSweep) || Interlocked.CompareExchange(ref _sweeping, 1, 0) != 0)
            {
                return false;
            }

            Volatile.Write(ref _nextFullSweep, now + _sweepInterval);
            var freed = SweepAndRelease(now);
            if (freed == 0)
            {
                LogCallersFull(logger, Name, MaxCallers);
            }

            return freed > 0;
        }

        // Drops every full (idle) bucket; the caller holds _sweeping. Returns how many were dropped.
        private int SweepAndRelease(long now)
        {
            var freed = 0;
            try
            {
                foreach (var (caller, bucket) in Buckets)
                {
                    var fullAt = Volatile.Read(ref bucket.FullAt);
                    if (fullAt != Bucket.RetiredMark && fullAt <= now
                        && Interlocked.CompareExchange(ref bucket.FullAt, Bucket.RetiredMark, fullAt) == fullAt
                        && Buckets.TryRemove(new KeyValuePair<object, Bucket>(caller, bucket)))
                    {
                        Interlocked.Decrement(ref _count);
                        freed++;
                    }
                }

                Volatile.Write(ref _trimAt, Math.Max(MinTrimThreshold, Volatile.Read(ref _count) * 2));
            }
            finally
            {
                Volatile.Write(ref _sweeping, 0);
            }

            return freed;
        }
    }
}
