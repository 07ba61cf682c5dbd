using System.Diagnostics;
using System.Net;
using MeshKit.Authorization;
using MeshKit.Policy;
using MeshKit.Tests.Identity;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Time.Testing;

namespace MeshKit.Tests.Authorization;

/// <summary>
/// The per-caller rate limits of authorization rules, driven directly (the 429 on the wire is in AuthorizationTests).
/// In the load collection: one test measures managed memory and one runs threads against policy changes.
/// </summary>
[Trait("Area", "Security")]
[Collection(LoadCollection.Name)]
public sealed class RateLimitTests
{
    private const string Heavy = "spiffe://example.org/ns/load/svc/heavy";

    [Fact]
    public void A_caller_gets_its_burst_then_one_permit_per_interval_with_a_retry_after_that_says_when()
    {
        var time = new FakeTimeProvider();
        var limits = new MeshRateLimits(time);
        var rule = Apply(limits, Limit("reads", permitsPerSecond: 2, burst: 3)).Rules[0];

        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(RateLimitOutcome.Acquired, limits.TryAcquire(rule, Heavy, out _));
        }

        Assert.Equal(RateLimitOutcome.Limited, limits.TryAcquire(rule, Heavy, out var retryAfter));
        Assert.Equal(TimeSpan.FromMilliseconds(500), retryAfter);
        time.Advance(TimeSpan.FromMilliseconds(499));
        Assert.Equal(RateLimitOutcome.Limited, limits.TryAcquire(rule, Heavy, out retryAfter));
        Assert.Equal(TimeSpan.FromMilliseconds(1), retryAfter);
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(RateLimitOutcome.Acquired, limits.TryAcquire(rule, Heavy, out _));
        Assert.Equal(RateLimitOutcome.Limited, limits.TryAcquire(rule, Heavy, out _));

        // A long pause refills the bucket to its burst, not beyond.
        time.Advance(TimeSpan.FromMinutes(1));
        var granted = 0;
        while (limits.TryAcquire(rule, Heavy, out _) == RateLimitOutcome.Acquired)
        {
            granted++;
        }

        Assert.Equal(3, granted);
    }

    [Fact]
    public void Callers_without_a_mesh_identity_are_told_apart_by_address_value_not_by_address_object()
    {
        var limits = new MeshRateLimits(new FakeTimeProvider());
        var rule = Apply(limits, Limit("public", permitsPerSecond: 1, burst: 1)).Rules[0];

        Assert.Equal(RateLimitOutcome.Acquired, limits.TryAcquire(rule, IPAddress.Parse("192.0.2.7"), out _));
        Assert.Equal(RateLimitOutcome.Limited, limits.TryAcquire(rule, IPAddress.Parse("192.0.2.7"), out _));
        Assert.Equal(RateLimitOutcome.Acquired, limits.TryAcquire(rule, IPAddress.Parse("192.0.2.8"), out _));
        Assert.Equal(RateLimitOutcome.Acquired, limits.TryAcquire(rule, IPAddress.Parse("2001:db8::7"), out _));
        Assert.Equal(RateLimitOutcome.Limited, limits.TryAcquire(rule, IPAddress.Parse("2001:db8::7"), out _));
        Assert.Equal(3, limits.CallerCount);
    }

    [Fact]
    public void Taking_or_being_refused_a_permit_as_a_known_caller_allocates_nothing()
    {
        var time = new FakeTimeProvider();
        var limits = new MeshRateLimits(time);
        var rule = Apply(limits, Limit("reads", permitsPerSecond: 1000, burst: 10)).Rules[0];
        var address = IPAddress.Parse("192.0.2.7");
        limits.TryAcquire(rule, Heavy, out _);
        limits.TryAcquire(rule, address, out _);

        var outcomes = new int[3];
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++)
        {
            outcomes[(int)limits.TryAcquire(rule, Heavy, out _)]++;
            outcomes[(int)limits.TryAcquire(rule, address, out _)]++;
            time.Advance(TimeSpan.FromTicks(2_500)); // a quarter of the interval: mostly refusals, some permits
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.True(outcomes[(int)RateLimitOutcome.Acquired] > 0 && outcomes[(int)RateLimitOutcome.Limited] > 0);
    }

    [Fact]
    public void A_hundred_thousand_distinct_callers_keep_the_tracked_callers_and_memory_bounded_while_limits_still_hold()
    {
        const int MaxCallers = 10_000;
        var time = new FakeTimeProvider();
        var limits = new MeshRateLimits(time);
        var rule = Apply(limits, Limit("reads", permitsPerSecond: 1, burst: 2, maxCallers: MaxCallers)).Rules[0];
        var callers = new string[100_000];
        for (var i = 0; i < callers.Length; i++)
        {
            callers[i] = $"spiffe://example.org/ns/load/svc/caller-{i}";
        }

        var before = GC.GetTotalMemory(forceFullCollection: true);

        // 100,000 newcomers, one a millisecond (each is idle again a second later), while one caller asks ten times a second.
        var admitted = 0;
        var heavyAdmitted = 0;
        var mostTracked = 0;
        for (var i = 0; i < callers.Length; i++)
        {
            if (limits.TryAcquire(rule, callers[i], out _) == RateLimitOutcome.Acquired)
            {
                admitted++;
            }

            if (i % 100 == 0 && limits.TryAcquire(rule, Heavy, out _) == RateLimitOutcome.Acquired)
            {
                heavyAdmitted++;
            }

            mostTracked = Math.Max(mostTracked, limits.CallerCount);
            time.Advance(TimeSpan.FromMilliseconds(1));
        }

        var retained = GC.GetTotalMemory(forceFullCollection: true) - before;
        Assert.Equal(callers.Length, admitted);
        Assert.InRange(mostTracked, 1, MaxCallers);
        Assert.InRange(heavyAdmitted, 95, 103); // 100 s at 1/s plus its burst of 2, out of 1,000 attempts
        Assert.True(retained < 4 * 1024 * 1024, $"{retained / 1024} KiB retained after 100,000 callers");

        // Now 20,000 newcomers at one instant: the table fills to its bound and the rest are refused, never admitted.
        var newcomers = new string[20_000];
        for (var i = 0; i < newcomers.Length; i++)
        {
            newcomers[i] = $"spiffe://example.org/ns/flood/svc/caller-{i}";
        }

        var refused = 0;
        foreach (var caller in newcomers)
        {
            var outcome = limits.TryAcquire(rule, caller, out var retryAfter);
            if (outcome == RateLimitOutcome.CallersFull)
            {
                refused++;
                Assert.True(retryAfter > TimeSpan.Zero);
            }

            Assert.True(limits.CallerCount <= MaxCallers, $"{limits.CallerCount} callers tracked, over the bound of {MaxCallers}");
        }

        Assert.Equal(MaxCallers, limits.CallerCount);
        Assert.InRange(refused, newcomers.Length - MaxCallers, newcomers.Length - 1);

        // Callers already tracked keep their limits: a newcomer that got in still has the second permit of its burst, then no more.
        var tracked = newcomers[0];
        Assert.Equal(RateLimitOutcome.Acquired, limits.TryAcquire(rule, tracked, out _));
        Assert.Equal(RateLimitOutcome.Limited, limits.TryAcquire(rule, tracked, out _));

        // Once the flood is idle (its buckets full again) it is dropped to make room.
        time.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal(RateLimitOutcome.Acquired, limits.TryAcquire(rule, "spiffe://example.org/ns/load/svc/late", out _));
        Assert.True(limits.CallerCount < 10, $"{limits.CallerCount} callers still tracked after all fell idle");
    }

    [Fact]
    public void A_policy_change_while_threads_acquire_never_meets_a_disposed_limiter()
    {
        var limits = new MeshRateLimits(TimeProvider.System);
        var current = Apply(limits, Limit("reads", permitsPerSecond: 1000, burst: 50));
        var callers = Enumerable.Range(0, 64).Select(i => $"spiffe://example.org/ns/load/svc/caller-{i}").ToArray();

        // The limit alternates, so every change replaces the rule's buckets; read up front to leave the cores to the threads.
        var policies = Enumerable.Range(0, 300).Select(i => Policy(Limit("reads", permitsPerSecond: i % 2 == 0 ? 999 : 1000, burst: 50))).ToArray();
        var errors = new List<Exception>();
        long acquisitions = 0;
        var stop = false;
        var deadline = Stopwatch.StartNew();

        var threads = Enumerable.Range(0, 2).Select(t => new Thread(() =>
        {
            for (var n = t; !Volatile.Read(ref stop) && n < 5_000_000; n++)
            {
                try
                {
                    limits.TryAcquire(Volatile.Read(ref current).Rules[0], callers[n % callers.Length], out _);
                    Interlocked.Increment(ref acquisitions);
                }
                catch (Exception ex)
                {
                    lock (errors)
                    {
                        errors.Add(ex);
                    }

                    return;
                }
            }
        })).ToList();
        threads.ForEach(t => t.Start());

        // Each change after the threads made progress under the previous one. As in PolicyWatcher: the new snapshot is
        // visible first, then the limits follow it.
        var changes = 0;
        for (; changes < policies.Length && deadline.Elapsed < TimeSpan.FromSeconds(8); changes++)
        {
            var seen = Interlocked.Read(ref acquisitions);
            while (Interlocked.Read(ref acquisitions) < seen + 20 && deadline.Elapsed < TimeSpan.FromSeconds(8))
            {
                Thread.Yield();
            }

            var next = policies[changes];
            Volatile.Write(ref current, next);
            limits.Apply(next);
        }

        Volatile.Write(ref stop, true);
        threads.ForEach(t => t.Join(TimeSpan.FromSeconds(5)));

        Assert.Empty(errors);
        Assert.True(changes >= 100, $"only {changes} policy changes in 8 s");
        Assert.True(Interlocked.Read(ref acquisitions) > changes * 20);
    }

    [Fact]
    public void A_policy_change_keeps_the_buckets_of_rules_whose_limit_did_not_change()
    {
        var time = new FakeTimeProvider();
        var limits = new MeshRateLimits(time);
        var first = Apply(limits, Limit("reads", 1, 2), Limit("writes", 1, 1));
        var reads = first.Rules[0];
        var writes = first.Rules[1];
        Assert.Equal(RateLimitOutcome.Acquired, limits.TryAcquire(reads, Heavy, out _));
        Assert.Equal(RateLimitOutcome.Acquired, limits.TryAcquire(reads, Heavy, out _));
        Assert.Equal(RateLimitOutcome.Limited, limits.TryAcquire(reads, Heavy, out _));
        Assert.Equal(RateLimitOutcome.Acquired, limits.TryAcquire(writes, Heavy, out _));
        Assert.Equal(RateLimitOutcome.Limited, limits.TryAcquire(writes, Heavy, out _));

        // Reordered, "reads" unchanged, "writes" given a larger burst: a reload must not hand "reads" callers a new burst.
        var second = Apply(limits, Limit("writes", 1, 5), Limit("reads", 1, 2));
        Assert.Equal(RateLimitOutcome.Limited, limits.TryAcquire(second.Rules[1], Heavy, out _));
        Assert.Equal(RateLimitOutcome.Acquired, limits.TryAcquire(second.Rules[0], Heavy, out _));
    }

    [Fact]
    public void MaxCallers_defaults_to_a_hundred_thousand_and_a_bad_value_names_its_key()
    {
        var read = Read(new()
        {
            ["Mesh:Authorization:Rules:0:RateLimit:PermitsPerSecond"] = "5",
            ["Mesh:Authorization:Rules:1:RateLimit:PermitsPerSecond"] = "5",
            ["Mesh:Authorization:Rules:1:RateLimit:MaxCallers"] = "500",
        });
        Assert.True(read.IsValid, string.Join("\n", read.Errors));
        Assert.Equal(100_000, read.Snapshot!.Authorization.Rules[0].RateLimit!.MaxCallers);
        Assert.Equal(500, read.Snapshot.Authorization.Rules[1].RateLimit!.MaxCallers);

        var bad = Read(new()
        {
            ["Mesh:Authorization:Rules:0:RateLimit:PermitsPerSecond"] = "5",
            ["Mesh:Authorization:Rules:0:RateLimit:MaxCallers"] = "0",
        });
        Assert.False(bad.IsValid);
        Assert.Contains(bad.Errors, e => e.Path == "Mesh:Authorization:Rules:0:RateLimit:MaxCallers");
    }

    private static PolicyReadResult Read(Dictionary<string, string?> settings) =>
        PolicyReader.Read(new ConfigurationBuilder().AddInMemoryCollection(settings).Build().GetSection("Mesh"));

    private static Dictionary<string, string?> Limit(string name, double permitsPerSecond, int burst, int? maxCallers = null)
    {
        var rule = new Dictionary<string, string?>
        {
            ["Name"] = name,
            ["RateLimit:PermitsPerSecond"] = permitsPerSecond.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["RateLimit:Burst"] = burst.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        if (maxCallers is { } max)
        {
            rule["RateLimit:MaxCallers"] = max.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return rule;
    }

    /// <summary>Reads rules as the mesh does, so the rule objects are new on every read, as on a reload.</summary>
    private static MeshAuthorizationPolicy Policy(params Dictionary<string, string?>[] rules)
    {
        var settings = new Dictionary<string, string?>();
        for (var i = 0; i < rules.Length; i++)
        {
            foreach (var (key, value) in rules[i])
            {
                settings[$"Mesh:Authorization:Rules:{i}:{key}"] = value;
            }
        }

        var read = Read(settings);
        Assert.True(read.IsValid, string.Join("\n", read.Errors));
        return read.Snapshot!.Authorization;
    }

    private static MeshAuthorizationPolicy Apply(MeshRateLimits limits, params Dictionary<string, string?>[] rules)
    {
        var policy = Policy(rules);
        limits.Apply(policy);
        return policy;
    }
}
