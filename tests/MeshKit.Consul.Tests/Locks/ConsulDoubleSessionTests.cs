using System.Diagnostics;
using System.Text;
using MeshKit.Testing;
using MeshKit.Testing.Consul;

namespace MeshKit.Consul.Tests.Locks;

/// <summary>
/// Session expiry and invalidation, which need short TTLs (a real agent refuses less than 10 s) or the double's switch
/// (<see cref="ConsulDouble.InvalidateSession"/>): against the double only, on real sockets.
/// </summary>
[Trait("Area", "ControlPlaneHA")]
public sealed class ConsulDoubleSessionTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static ConsulDoubleOptions ShortTtls => new() { MinimumSessionTtl = TimeSpan.FromMilliseconds(500) };

    [Fact]
    public async Task An_unrenewed_session_ends_no_sooner_than_its_TTL_releasing_its_key_and_starting_the_lock_delay()
    {
        await using var consul = await ConsulTestContext.WithDoubleAsync(ShortTtls);
        var client = consul.CreateClient();
        var key = consul.Key("leader");
        var ttl = TimeSpan.FromSeconds(1);
        var created = Stopwatch.StartNew();
        var session = await client.CreateSessionAsync(new ConsulSessionRequest { Ttl = ttl, LockDelay = TimeSpan.FromSeconds(5) }, Ct);
        Assert.True(await client.AcquireKeyAsync(key, session, Encoding.UTF8.GetBytes("holder"), Ct));

        await Eventually.WaitAsync(() => !consul.Double!.HasSession(session), Deadline, "the unrenewed session to end");

        // Consul's promise: not before the TTL; in fact after twice the TTL (its multiplier), as the double does.
        Assert.InRange(created.Elapsed, ttl * 2, ttl * 2 + TimeSpan.FromSeconds(1));
        var released = (await client.GetKeyAsync(key, cancellationToken: Ct)).Value!;
        Assert.True(string.IsNullOrEmpty(released.Session));
        Assert.NotNull(consul.Double!.LockDelayUntil(key));
        var other = await client.CreateSessionAsync(new ConsulSessionRequest { Ttl = ttl }, Ct);
        Assert.False(await client.AcquireKeyAsync(key, other, Encoding.UTF8.GetBytes("other"), Ct));
    }

    [Fact]
    public async Task A_session_renewed_within_its_TTL_lives_on()
    {
        await using var consul = await ConsulTestContext.WithDoubleAsync(ShortTtls);
        var client = consul.CreateClient();
        var session = await client.CreateSessionAsync(new ConsulSessionRequest { Ttl = TimeSpan.FromSeconds(1) }, Ct);

        // Three times the double's expiry (2 × TTL), renewing every 300 ms.
        var until = Stopwatch.StartNew();
        while (until.Elapsed < TimeSpan.FromSeconds(6))
        {
            Assert.NotNull(await client.RenewSessionAsync(session, Ct));
            await Task.Delay(300, Ct);
        }

        Assert.True(consul.Double!.HasSession(session));
    }

    [Fact]
    public async Task A_session_invalidated_by_the_agent_releases_its_key_which_nobody_acquires_within_the_lock_delay()
    {
        await using var consul = await ConsulTestContext.WithDoubleAsync();
        var client = consul.CreateClient();
        var key = consul.Key("leader");
        var lockDelay = TimeSpan.FromSeconds(1);
        var holder = await client.CreateSessionAsync(new ConsulSessionRequest { LockDelay = lockDelay }, Ct);
        var other = await client.CreateSessionAsync(cancellationToken: Ct);
        Assert.True(await client.AcquireKeyAsync(key, holder, Encoding.UTF8.GetBytes("holder"), Ct));

        var invalidated = Stopwatch.StartNew();
        Assert.True(consul.Double!.InvalidateSession(holder));

        Assert.Null(await client.RenewSessionAsync(holder, Ct));
        Assert.True(string.IsNullOrEmpty((await client.GetKeyAsync(key, cancellationToken: Ct)).Value!.Session));
        Assert.False(await client.AcquireKeyAsync(key, other, Encoding.UTF8.GetBytes("other"), Ct));
        await Eventually.WaitAsync(async () => await client.AcquireKeyAsync(key, other, Encoding.UTF8.GetBytes("other"), Ct), Deadline, "the key after the lock delay", TimeSpan.FromMilliseconds(50));
        Assert.True(invalidated.Elapsed >= lockDelay - TimeSpan.FromMilliseconds(50), $"acquired after {invalidated.Elapsed.TotalMilliseconds:0} ms");
        Assert.False(consul.Double.InvalidateSession(holder));
    }

    [Fact]
    public async Task A_lock_whose_Consul_stops_answering_counts_itself_lost_within_its_TTL_and_holds_again_once_Consul_is_back()
    {
        await using var consul = await ConsulTestContext.WithDoubleAsync(ShortTtls);
        var client = consul.CreateClient(o => o.RequestTimeout = TimeSpan.FromSeconds(5));
        var key = consul.Key("leader");
        var ttl = TimeSpan.FromSeconds(1);
        await using var holder = new ConsulLock(client, new ConsulLockOptions { Key = key, Value = Encoding.UTF8.GetBytes("holder"), Ttl = ttl, LockDelay = TimeSpan.FromMilliseconds(500) }, consul.Logger<ConsulLock>());
        var lost = new TaskCompletionSource<ConsulLockLostEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        holder.Lost += (_, e) => lost.TrySetResult(e);
        await holder.StartAsync(Ct);
        await Eventually.WaitAsync(() => holder.IsHeld, Deadline, "the lock");
        var token = holder.HeldToken;
        var firstSession = holder.SessionId;

        var outage = Stopwatch.StartNew();
        await consul.Double!.StopAsync();
        var loss = await lost.Task.WaitAsync(Deadline, Ct);

        // The last renewal began before the outage, so a whole TTL after it has passed by TTL after the outage began.
        Assert.Equal(ConsulLockLossReason.SessionExpired, loss.Reason);
        Assert.True(outage.Elapsed <= ttl + TimeSpan.FromMilliseconds(250), $"lost {outage.Elapsed.TotalMilliseconds:0} ms into the outage, TTL {ttl.TotalMilliseconds} ms");
        Assert.True(token.IsCancellationRequested);
        Assert.False(holder.IsHeld);

        await consul.Double.StartAsync();
        await Eventually.WaitAsync(() => holder.IsHeld, Deadline, "the lock again once Consul is back");
        Assert.NotEqual(firstSession, holder.SessionId);
        Assert.False(consul.Double.HasSession(firstSession!));
        Assert.Contains(consul.Logs.Entries, e => e.EventId.Id == 4146);
    }
}
