using System.Diagnostics;
using System.Net;
using System.Text;
using MeshKit.Testing;
using MeshKit.Testing.Consul;

namespace MeshKit.Consul.Tests.Contract;

/// <summary>
/// What leader election relies on from Consul's sessions and KV locks, asserted through MeshKit's client and
/// <see cref="ConsulLock"/>: against the double (<see cref="ConsulLockContractTestsAgainstTheDouble"/>) and, when
/// <c>CONSUL_HTTP_ADDR</c> is set, against a real agent (<see cref="ConsulLockContractTestsAgainstARealAgent"/>).
/// Sessions here use a 10-second TTL, the smallest a Consul agent accepts by default; expiry with shorter TTLs is
/// tested against the double alone (<see cref="Locks.ConsulDoubleSessionTests"/>).
/// </summary>
[Trait("Area", "ControlPlaneHA")]
public abstract class ConsulLockContractTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan AgentMinimumTtl = TimeSpan.FromSeconds(10);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Creates the test's Consul: the double, or the real agent (skipping the test when none is configured).</summary>
    protected abstract Task<ConsulTestContext> ArrangeAsync(ConsulDoubleOptions? options = null);

    [Fact]
    public async Task A_session_keeps_its_TTL_lock_delay_behavior_and_checks_and_ends_when_destroyed()
    {
        await using var consul = await ArrangeAsync();
        var client = consul.CreateClient();
        var name = ConsulTestContext.UniqueName("lock");

        var custom = consul.Session(await client.CreateSessionAsync(new ConsulSessionRequest
        {
            Name = name,
            Ttl = AgentMinimumTtl,
            LockDelay = TimeSpan.FromSeconds(3),
            Behavior = ConsulSessionBehavior.Delete,
            NodeChecks = [],
        }, Ct));
        var defaults = consul.Session(await client.CreateSessionAsync(cancellationToken: Ct));

        var read = (await client.GetSessionAsync(custom, Ct)).Value;
        Assert.NotNull(read);
        Assert.Equal((custom, name, TimeSpan.FromSeconds(3), ConsulSessionBehavior.Delete, (TimeSpan?)AgentMinimumTtl), (read.Id, read.Name, read.LockDelay, read.Behavior, read.Ttl));
        Assert.Empty(read.NodeChecks);
        Assert.NotEmpty(read.Node);

        // Consul's defaults: tied to the node's serfHealth, no TTL, a 15 s lock delay, release.
        var plain = (await client.GetSessionAsync(defaults, Ct)).Value!;
        Assert.Equal(["serfHealth"], plain.NodeChecks);
        Assert.Null(plain.Ttl);
        Assert.Equal(TimeSpan.FromSeconds(15), plain.LockDelay);
        Assert.Equal(ConsulSessionBehavior.Release, plain.Behavior);

        var listed = await client.ListSessionsAsync(Ct);
        Assert.Contains(listed.Value, s => s.Id == custom);
        Assert.Contains(listed.Value, s => s.Id == defaults);
        Assert.True(listed.Index > 0);

        // Consul may lengthen the TTL in a renew answer, never shorten it.
        var renewed = await client.RenewSessionAsync(custom, Ct);
        Assert.NotNull(renewed);
        Assert.True(renewed.Ttl >= AgentMinimumTtl, $"renewed TTL {renewed.Ttl}");

        Assert.True(await client.DestroySessionAsync(custom, Ct));
        Assert.Null((await client.GetSessionAsync(custom, Ct)).Value);
        Assert.Null(await client.RenewSessionAsync(custom, Ct));
        Assert.DoesNotContain((await client.ListSessionsAsync(Ct)).Value, s => s.Id == custom);

        // Destroying is idempotent.
        Assert.True(await client.DestroySessionAsync(custom, Ct));
    }

    [Fact]
    public async Task A_session_TTL_below_the_agents_minimum_is_refused()
    {
        await using var consul = await ArrangeAsync();
        var client = consul.CreateClient();

        var error = await Assert.ThrowsAsync<ConsulException>(() => client.CreateSessionAsync(new ConsulSessionRequest { Ttl = TimeSpan.FromSeconds(2) }, Ct));

        Assert.Equal(ConsulErrorKind.Status, error.Kind);
        Assert.Equal("PUT /v1/session/create", error.Endpoint);
        Assert.Contains("TTL", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task One_session_at_a_time_holds_a_key_the_holder_may_acquire_again_and_LockIndex_counts_holders()
    {
        await using var consul = await ArrangeAsync();
        var client = consul.CreateClient();
        var key = consul.Key("leader");
        var first = consul.Session(await client.CreateSessionAsync(new ConsulSessionRequest { Ttl = AgentMinimumTtl }, Ct));
        var second = consul.Session(await client.CreateSessionAsync(new ConsulSessionRequest { Ttl = AgentMinimumTtl }, Ct));

        // The key need not exist.
        Assert.True(await client.AcquireKeyAsync(key, first, Bytes("first"), Ct));
        var held = (await client.GetKeyAsync(key, cancellationToken: Ct)).Value!;
        Assert.Equal((first, 1UL, "first"), (held.Session, held.LockIndex, held.GetValueAsString()));

        Assert.False(await client.AcquireKeyAsync(key, second, Bytes("second"), Ct));
        Assert.Equal("first", (await client.GetKeyAsync(key, cancellationToken: Ct)).Value!.GetValueAsString());

        // Again for the holder: the value changes, the lock index does not.
        Assert.True(await client.AcquireKeyAsync(key, first, Bytes("first, again"), Ct));
        var again = (await client.GetKeyAsync(key, cancellationToken: Ct)).Value!;
        Assert.Equal((first, 1UL, "first, again"), (again.Session, again.LockIndex, again.GetValueAsString()));

        // A plain write goes through and leaves the lock alone; only the holder releases.
        Assert.True(await client.PutKeyAsync(key, "written", cancellationToken: Ct));
        Assert.Equal(first, (await client.GetKeyAsync(key, cancellationToken: Ct)).Value!.Session);
        Assert.False(await client.ReleaseKeyAsync(key, second, Bytes("second"), Ct));
        Assert.True(await client.ReleaseKeyAsync(key, first, Bytes("released"), Ct));
        var released = (await client.GetKeyAsync(key, cancellationToken: Ct)).Value!;
        Assert.True(string.IsNullOrEmpty(released.Session));
        Assert.Equal((1UL, "released"), (released.LockIndex, released.GetValueAsString()));

        // A release starts no lock delay: the next session acquires at once, as the second holder.
        Assert.True(await client.AcquireKeyAsync(key, second, Bytes("second"), Ct));
        var next = (await client.GetKeyAsync(key, cancellationToken: Ct)).Value!;
        Assert.Equal((second, 2UL), (next.Session, next.LockIndex));
    }

    [Fact]
    public async Task Destroying_the_holders_session_releases_the_key_and_nobody_acquires_it_until_the_lock_delay_has_passed()
    {
        await using var consul = await ArrangeAsync();
        var client = consul.CreateClient();
        var key = consul.Key("leader");
        var lockDelay = TimeSpan.FromSeconds(2);
        var holder = consul.Session(await client.CreateSessionAsync(new ConsulSessionRequest { Ttl = AgentMinimumTtl, LockDelay = lockDelay }, Ct));
        var other = consul.Session(await client.CreateSessionAsync(new ConsulSessionRequest { Ttl = AgentMinimumTtl }, Ct));
        Assert.True(await client.AcquireKeyAsync(key, holder, Bytes("holder"), Ct));

        var destroyed = Stopwatch.StartNew();
        Assert.True(await client.DestroySessionAsync(holder, Ct));

        var released = (await client.GetKeyAsync(key, cancellationToken: Ct)).Value!;
        Assert.True(string.IsNullOrEmpty(released.Session));
        Assert.Equal("holder", released.GetValueAsString());
        Assert.False(await client.AcquireKeyAsync(key, other, Bytes("other"), Ct));

        await Eventually.WaitAsync(async () => await client.AcquireKeyAsync(key, other, Bytes("other"), Ct), Deadline, "the key to be acquirable after the lock delay", TimeSpan.FromMilliseconds(100));
        Assert.True(destroyed.Elapsed >= lockDelay - TimeSpan.FromMilliseconds(100), $"acquired {destroyed.Elapsed.TotalMilliseconds:0} ms after the destroy, within the lock delay");
        Assert.Equal(other, (await client.GetKeyAsync(key, cancellationToken: Ct)).Value!.Session);
    }

    [Fact]
    public async Task A_session_with_delete_behavior_deletes_the_keys_it_holds_when_it_ends()
    {
        await using var consul = await ArrangeAsync();
        var client = consul.CreateClient();
        var key = consul.Key("ephemeral");
        var session = consul.Session(await client.CreateSessionAsync(new ConsulSessionRequest { Ttl = AgentMinimumTtl, Behavior = ConsulSessionBehavior.Delete }, Ct));
        Assert.True(await client.AcquireKeyAsync(key, session, Bytes("here while the session lives"), Ct));

        Assert.True(await client.DestroySessionAsync(session, Ct));

        Assert.Null((await client.GetKeyAsync(key, cancellationToken: Ct)).Value);
    }

    [Fact]
    public async Task Acquiring_with_a_session_Consul_does_not_know_is_an_error_not_a_refusal()
    {
        await using var consul = await ArrangeAsync();
        var client = consul.CreateClient();
        var key = consul.Key("leader");
        var session = await client.CreateSessionAsync(new ConsulSessionRequest { Ttl = AgentMinimumTtl }, Ct);
        await client.DestroySessionAsync(session, Ct);

        var error = await Assert.ThrowsAsync<ConsulException>(() => client.AcquireKeyAsync(key, session, Bytes("late"), Ct));

        Assert.Equal((ConsulErrorKind.Status, HttpStatusCode.InternalServerError), (error.Kind, error.StatusCode));
        Assert.Contains("session", error.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Null((await client.GetKeyAsync(key, cancellationToken: Ct)).Value);
    }

    [Fact]
    public async Task A_blocking_query_on_a_key_wakes_on_acquire_and_on_release()
    {
        await using var consul = await ArrangeAsync();
        var client = consul.CreateClient(o => o.Wait = TimeSpan.FromSeconds(30));
        var key = consul.Key("leader");
        Assert.True(await client.PutKeyAsync(key, "nobody", cancellationToken: Ct));
        var session = consul.Session(await client.CreateSessionAsync(new ConsulSessionRequest { Ttl = AgentMinimumTtl }, Ct));
        await using var recorder = new QueryRecorder<IReadOnlyList<ConsulKeyValue>>(client.CreateKeyValueQuery(key));
        await recorder.WaitForAsync(pairs => pairs.Count == 1, "the key");
        await Eventually.WaitAsync(() => recorder.Query.RequestCount >= 2, Deadline, "the blocking request to be sent");

        Assert.True(await client.AcquireKeyAsync(key, session, Bytes("holder"), Ct));
        await recorder.WaitForAsync(pairs => pairs.Count == 1 && pairs[0].Session == session, "the acquisition on the waiting query");

        Assert.True(await client.ReleaseKeyAsync(key, session, Bytes("holder"), Ct));
        await recorder.WaitForAsync(pairs => pairs.Count == 1 && string.IsNullOrEmpty(pairs[0].Session), "the release on the waiting query");

        // Each wake came on a waiting query (30 s wait): a handful of requests, not a poll.
        Assert.InRange(recorder.Query.RequestCount, 3, 6);
    }

    [Fact]
    public async Task Two_locks_on_one_key_elect_one_holder_and_stopping_it_hands_over_without_the_lock_delay()
    {
        await using var consul = await ArrangeAsync();
        var client = consul.CreateClient();
        var key = consul.Key("leader");

        // A 15 s lock delay: a hand-over within a few seconds shows the stop released the key rather than let it lapse.
        await using var a = NewLock(consul, client, key, "a", lockDelay: TimeSpan.FromSeconds(15));
        await using var b = NewLock(consul, client, key, "b", lockDelay: TimeSpan.FromSeconds(15));
        await a.StartAsync(Ct);
        await b.StartAsync(Ct);

        await Eventually.WaitAsync(() => a.IsHeld || b.IsHeld, Deadline, "one lock to be acquired");
        var (holder, follower) = a.IsHeld ? (a, b) : (b, a);
        await Eventually.WaitAsync(() => follower.Observed?.Session == holder.SessionId, Deadline, "the follower to see the holder");
        Assert.False(follower.IsHeld);
        Assert.Equal(holder.Value.ToArray(), follower.Observed!.Value.ToArray());
        var token = holder.HeldToken;
        Assert.False(token.IsCancellationRequested);

        var stopped = Stopwatch.StartNew();
        await holder.StopAsync(Ct);

        Assert.True(token.IsCancellationRequested);
        await Eventually.WaitAsync(() => follower.IsHeld, Deadline, "the follower to take over");
        Assert.True(stopped.Elapsed < TimeSpan.FromSeconds(8), $"hand-over took {stopped.Elapsed.TotalSeconds:0.0} s");
        var after = (await client.GetKeyAsync(key, cancellationToken: Ct)).Value!;
        Assert.Equal(follower.SessionId, after.Session);
        Assert.Equal(2UL, after.LockIndex);
    }

    [Fact]
    public async Task When_the_holders_session_is_destroyed_it_loses_the_lock_at_once_and_the_other_takes_over_after_the_lock_delay()
    {
        await using var consul = await ArrangeAsync();
        var client = consul.CreateClient();
        var key = consul.Key("leader");
        var lockDelay = TimeSpan.FromSeconds(2);
        await using var a = NewLock(consul, client, key, "a", lockDelay);
        await using var b = NewLock(consul, client, key, "b", lockDelay);
        await a.StartAsync(Ct);
        await Eventually.WaitAsync(() => a.IsHeld, Deadline, "the first lock to be acquired");
        await b.StartAsync(Ct);
        await Eventually.WaitAsync(() => b.Observed?.Session == a.SessionId, Deadline, "the second to follow the first");
        var lost = new TaskCompletionSource<ConsulLockLostEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        a.Lost += (_, e) => lost.TrySetResult(e);

        // As an operator (or Consul, on a failed check) ends the holder's session.
        var destroyed = Stopwatch.StartNew();
        Assert.True(await client.DestroySessionAsync(a.SessionId!, Ct));

        var loss = await lost.Task.WaitAsync(TimeSpan.FromSeconds(3), Ct);
        Assert.Contains(loss.Reason, (ConsulLockLossReason[])[ConsulLockLossReason.KeyLost, ConsulLockLossReason.SessionInvalidated]);
        Assert.False(a.IsHeld);
        await Eventually.WaitAsync(() => a.IsHeld || b.IsHeld, Deadline, "a new holder after the lock delay");
        Assert.True(destroyed.Elapsed >= lockDelay - TimeSpan.FromMilliseconds(100), $"a new holder {destroyed.Elapsed.TotalMilliseconds:0} ms after the destroy, within the lock delay");
        Assert.False(a.IsHeld && b.IsHeld);
    }

    private static ReadOnlyMemory<byte> Bytes(string text) => Encoding.UTF8.GetBytes(text);

    private static ConsulLock NewLock(ConsulTestContext consul, ConsulClient client, string key, string who, TimeSpan lockDelay) =>
        new(client, new ConsulLockOptions { Key = key, Value = Bytes(who), Ttl = AgentMinimumTtl, LockDelay = lockDelay }, consul.Logger<ConsulLock>());
}

/// <summary>The session and lock contract, against the in-test double.</summary>
public sealed class ConsulLockContractTestsAgainstTheDouble : ConsulLockContractTests
{
    protected override async Task<ConsulTestContext> ArrangeAsync(ConsulDoubleOptions? options = null) =>
        await ConsulTestContext.WithDoubleAsync(options);
}

/// <summary>The session and lock contract, against the real agent named by <c>CONSUL_HTTP_ADDR</c>; skipped when it is not set.</summary>
public sealed class ConsulLockContractTestsAgainstARealAgent : ConsulLockContractTests
{
    protected override Task<ConsulTestContext> ArrangeAsync(ConsulDoubleOptions? options = null) =>
        Task.FromResult(ConsulTestContext.WithRealAgent());
}
