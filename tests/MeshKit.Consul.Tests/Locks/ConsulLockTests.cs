using System.Collections.Concurrent;
using System.Text;
using MeshKit.Testing;
using Microsoft.Extensions.Time.Testing;

namespace MeshKit.Consul.Tests.Locks;

/// <summary>
/// The lock's state machine in virtual time, against an in-memory Consul (<see cref="FakeLockBackend"/>): when it
/// acquires, renews, follows, and above all when it must count the lock as lost. The clock only moves when a test moves
/// it, so "not before the TTL" and "at the TTL" are exact; the wire is covered by the contract tests.
/// </summary>
[Trait("Area", "ControlPlaneHA")]
public sealed class ConsulLockTests : IAsyncDisposable
{
    // A real-time bound on what must follow at once from a change (loops run on the thread pool).
    private static readonly TimeSpan Promptly = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan Ttl = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan LockDelay = TimeSpan.FromSeconds(4);

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly FakeLockBackend _consul;
    private readonly TestLogSink _logs = new();
    private readonly ConcurrentQueue<string> _events = new();
    private readonly ConsulLock _lock;

    public ConsulLockTests()
    {
        _consul = new FakeLockBackend(_time);
        Microsoft.Extensions.Logging.ILoggerFactory factory = new Microsoft.Extensions.Logging.LoggerFactory([_logs]);
        var logger = Microsoft.Extensions.Logging.LoggerFactoryExtensions.CreateLogger<ConsulLock>(factory);
        _lock = new ConsulLock(_consul, new ConsulLockOptions { Key = "meshkit/leader", Value = Encoding.UTF8.GetBytes("replica-a"), Ttl = Ttl, LockDelay = LockDelay }, _time, logger);
        _lock.Acquired += (_, _) => _events.Enqueue("acquired");
        _lock.Lost += (_, e) => _events.Enqueue("lost:" + e.Reason);
    }

    [Fact]
    public async Task A_free_key_is_acquired_and_its_session_renewed_every_half_TTL_while_held()
    {
        var start = _time.GetUtcNow();
        await StartHeldAsync();
        Assert.Equal("replica-a", _consul.Key!.GetValueAsString());
        Assert.Equal(_lock.SessionId, _consul.Key.Session);
        Assert.Equal(start, _lock.HeldSince);

        for (var n = 1; n <= 4; n++)
        {
            _time.Advance(Ttl / 2);
            await WaitAsync(() => _consul.Count("renew") == n, $"renewal {n}");
            Assert.Equal(start + (Ttl / 2 * n), _consul.Calls.Last(c => c.Call == "renew").At);
            Assert.True(_lock.IsHeld);
        }

        Assert.False(_lock.HeldToken.IsCancellationRequested);
        Assert.Equal(["acquired"], _events);
    }

    [Fact]
    public async Task Failing_renewals_keep_the_lock_until_a_whole_TTL_has_passed_since_the_last_success_and_not_a_moment_longer()
    {
        await StartHeldAsync();
        var token = _lock.HeldToken;
        _time.Advance(Ttl / 2);
        await WaitAsync(() => _consul.Count("renew") == 1, "the first renewal");
        var lastSuccess = _time.GetUtcNow();

        _consul.Mode = FakeConsulMode.Refuse;
        _time.Advance(Ttl / 2);
        await WaitAsync(() => _logs.Entries.Any(e => e.EventId.Id == 4144), "the first failed renewal");
        _time.Advance(Ttl / 2 - TimeSpan.FromMilliseconds(1));

        Assert.True(_lock.IsHeld, "lost before its TTL");
        Assert.False(token.IsCancellationRequested);
        Assert.Equal(lastSuccess + Ttl - TimeSpan.FromMilliseconds(1), _time.GetUtcNow());

        _time.Advance(TimeSpan.FromMilliseconds(1));

        // At the TTL, on the clock's own thread: the loss needs no answer from Consul.
        Assert.False(_lock.IsHeld);
        Assert.True(token.IsCancellationRequested);
        Assert.Equal(["acquired", "lost:SessionExpired"], _events);
    }

    [Fact]
    public async Task A_renewal_that_hangs_does_not_delay_the_loss_past_the_TTL()
    {
        await StartHeldAsync();
        var token = _lock.HeldToken;
        var created = _time.GetUtcNow();

        _consul.Mode = FakeConsulMode.Hang;
        _time.Advance(Ttl / 2);
        await WaitAsync(() => _consul.Count("renew") == 1, "the renewal that hangs");
        _time.Advance(Ttl / 2 - TimeSpan.FromMilliseconds(1));
        Assert.True(_lock.IsHeld);

        _time.Advance(TimeSpan.FromMilliseconds(1));

        Assert.Equal(created + Ttl, _time.GetUtcNow());
        Assert.False(_lock.IsHeld);
        Assert.True(token.IsCancellationRequested);
    }

    [Fact]
    public async Task A_renewal_that_finds_the_session_gone_ends_the_holding_at_once_and_the_lock_is_won_again_after_the_lock_delay()
    {
        await StartHeldAsync();
        var first = _lock.SessionId!;

        // Consul invalidates the session (a failed node check) a second before its renewal is due, and the blocking
        // query is slow to say the key changed.
        _time.Advance(Ttl / 2 - TimeSpan.FromSeconds(1));
        _consul.WatchPaused = true;
        _consul.Invalidate(first);
        var invalidated = _time.GetUtcNow();
        _time.Advance(TimeSpan.FromSeconds(1));

        await WaitAsync(() => !_lock.IsHeld, "the loss on the renewal's 404");
        Assert.Equal(["acquired", "lost:SessionInvalidated"], _events);

        // A new session competes again; Consul refuses it until the key's lock delay has passed.
        _consul.WatchPaused = false;
        await WaitAsync(() => _lock.SessionId is { } s && s != first && _consul.Count("acquire") >= 2, "a new session's attempt");
        Assert.False(_lock.IsHeld);
        while (!_lock.IsHeld && _time.GetUtcNow() < invalidated + LockDelay + TimeSpan.FromSeconds(5))
        {
            var attempts = _consul.Count("acquire");
            _time.Advance(LockDelay / 4);
            await WaitAsync(() => _lock.IsHeld || _consul.Count("acquire") > attempts, "another attempt");
        }

        await WaitAsync(() => _lock.IsHeld, "the lock after the lock delay");
        var won = _consul.Calls.Last(c => c.Call == "acquire").At;
        Assert.Equal(invalidated + LockDelay, won);
        Assert.Equal(["acquired", "lost:SessionInvalidated", "acquired"], _events);
    }

    [Fact]
    public async Task A_key_taken_by_another_session_ends_the_holding_without_waiting_for_the_clock()
    {
        await StartHeldAsync();
        var token = _lock.HeldToken;

        _consul.TakeKey("intruder");

        // The holding ends under the lock's gate and the token is cancelled just after, outside it (its callbacks must not
        // run under the gate): wait for both.
        await WaitAsync(() => !_lock.IsHeld && token.IsCancellationRequested, "the loss");
        Assert.Equal(["acquired", "lost:KeyLost"], _events);
        Assert.Equal("intruder", _lock.Observed!.Session);
    }

    [Fact]
    public async Task A_follower_does_not_try_while_another_session_holds_the_key_and_acquires_once_it_is_released()
    {
        _consul.HoldBy("other", LockDelay, "replica-b");
        await _lock.StartAsync(TestContext.Current.CancellationToken);
        await WaitAsync(() => _lock.SessionId is not null && _lock.Observed?.Session == "other", "the follower to see the holder");
        for (var n = 1; n <= 2; n++)
        {
            // The clock moves in small steps until the renewal: a single jump of Ttl/2 could come before the lock has set
            // its renewal timer (seen once in CI under load), and that timer would then never fire.
            var expected = n;
            var moved = TimeSpan.Zero;
            await WaitAsync(
                () =>
                {
                    if (_consul.Count("renew") >= expected)
                    {
                        return true;
                    }

                    _time.Advance(TimeSpan.FromMilliseconds(100));
                    moved += TimeSpan.FromMilliseconds(100);
                    return false;
                },
                "the follower's session to be renewed");
            Assert.Equal(expected, _consul.Count("renew"));
            Assert.True(n > 1 || moved >= Ttl / 2, $"renewed after {moved}, before half the TTL");
        }

        Assert.Equal(0, _consul.Count("acquire"));
        Assert.False(_lock.IsHeld);
        Assert.Equal("replica-b", _lock.Observed!.GetValueAsString());

        // A release applies no lock delay: the follower takes over without the clock moving.
        _consul.Release();

        await WaitAsync(() => _lock.IsHeld, "the follower to acquire");
        Assert.Equal(1, _consul.Count("acquire"));
    }

    [Fact]
    public async Task A_refusal_during_the_lock_delay_is_retried_four_times_per_delay_until_it_succeeds()
    {
        _consul.HoldBy("other", LockDelay);
        await _lock.StartAsync(TestContext.Current.CancellationToken);
        await WaitAsync(() => _lock.Observed?.Session == "other", "the holder");

        // The holder crashes: Consul invalidates its session, so the key is free but locked for its lock delay.
        _consul.Invalidate("other");
        var freed = _time.GetUtcNow();
        await WaitAsync(() => _consul.Count("acquire") == 1, "the first attempt");
        Assert.False(_lock.IsHeld);

        for (var n = 2; !_lock.IsHeld; n++)
        {
            Assert.True(n <= 6, "still refused after the lock delay");
            _time.Advance(LockDelay / 4);
            var expected = n;
            await WaitAsync(() => _consul.Count("acquire") == expected, $"attempt {n}");
            await WaitAsync(() => _lock.IsHeld || _consul.Count("acquire") == expected, "the attempt's answer");
        }

        await WaitAsync(() => _lock.IsHeld, "the lock");
        var attempts = _consul.Calls.Where(c => c.Call == "acquire").Select(c => c.At - freed).ToList();
        Assert.Equal([TimeSpan.Zero, LockDelay / 4, LockDelay / 2, LockDelay * 3 / 4, LockDelay], attempts);
    }

    [Fact]
    public async Task Stopping_ends_the_holding_before_it_releases_the_key_and_destroys_the_session()
    {
        await StartHeldAsync();
        var token = _lock.HeldToken;
        var session = _lock.SessionId!;
        _lock.Lost += (_, _) => _events.Enqueue($"calls at loss: {_consul.Count("release")} release(s)");

        await _lock.StopAsync(TestContext.Current.CancellationToken);

        Assert.True(token.IsCancellationRequested);
        Assert.Equal(["acquired", "lost:Stopped", "calls at loss: 0 release(s)"], _events);
        var tail = _consul.Calls.TakeLast(2).Select(c => (c.Call, c.Argument)).ToList();
        Assert.Equal([("release", session), ("destroy", session)], tail);
        Assert.True(string.IsNullOrEmpty(_consul.Key!.Session));
        Assert.Equal("replica-a", _consul.Key.GetValueAsString());
        Assert.False(_consul.HasSession(session));
    }

    [Fact]
    public async Task A_session_given_up_while_Consul_was_unreachable_is_destroyed_before_a_new_one_is_created()
    {
        await StartHeldAsync();
        var first = _lock.SessionId!;

        // Consul stops answering (the renewal hangs), and is back just as the TTL runs out.
        _consul.Mode = FakeConsulMode.Hang;
        _time.Advance(Ttl / 2);
        await WaitAsync(() => _consul.Count("renew") == 1, "the renewal that hangs");
        _time.Advance(Ttl / 2 - TimeSpan.FromMilliseconds(1));
        _consul.Mode = FakeConsulMode.Answer;
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.False(_lock.IsHeld);

        // The old session may still hold the key in Consul: it is destroyed (freeing the key after its lock delay,
        // not after Consul's own expiry), and only then is another created.
        await WaitAsync(() => _consul.Count("create") == 2, "a new session");
        var calls = _consul.Calls.Select(c => (c.Call, c.Argument)).ToList();
        var destroyed = calls.IndexOf(("destroy", first));
        Assert.True(destroyed >= 0, "the given-up session was not destroyed");
        Assert.True(destroyed < calls.FindLastIndex(c => c.Call == "create"), "a new session was created before the old one was destroyed");
        Assert.False(_consul.HasSession(first));
        Assert.Contains(_logs.Entries, e => e.EventId.Id == 4146);
    }

    public async ValueTask DisposeAsync()
    {
        _consul.Mode = FakeConsulMode.Answer;
        await _lock.DisposeAsync();
    }

    private static Task WaitAsync(Func<bool> condition, string what) =>
        Eventually.WaitAsync(condition, Promptly, what, TimeSpan.FromMilliseconds(5));

    private async Task StartHeldAsync()
    {
        await _lock.StartAsync(TestContext.Current.CancellationToken);
        await WaitAsync(() => _lock.IsHeld, "the lock");
    }
}
