using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using MeshKit.ControlPlane.Coordination;
using MeshKit.Testing;
using MeshKit.Testing.Consul;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.ControlPlane.Tests.Coordination;

/// <summary>
/// Leader election among real control-service replicas (real Kestrel, real TLS) sharing the Consul double: exactly one
/// leads, a stopped or crashed leader is replaced within the session TTL plus the lock delay, a leader that cannot
/// renew stops its leader-only steps before its TTL has passed, and CA rotation steps run on the leader only. Short
/// settings: a 2-second session TTL and a 1-second lock delay.
/// </summary>
[Trait("Area", "ControlPlaneHA")]
public sealed class LeaderElectionTests
{
    private static readonly TimeSpan LockTtl = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan LockDelay = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Three_replicas_elect_exactly_one_leader_which_the_others_name()
    {
        await using var consul = await StartConsulAsync();
        var timeline = new LeadershipTimeline();
        await using var a = await StartReplicaAsync(consul, timeline);
        await using var b = await StartReplicaAsync(consul, timeline);
        await using var c = await StartReplicaAsync(consul, timeline);
        ControlPlaneHost[] replicas = [a, b, c];

        var leader = await SingleLeaderAsync(replicas);

        // Over three TTLs (renewals every half TTL), leadership stays where it is, and always with one replica.
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < LockTtl * 3)
        {
            Assert.Equal([leader], replicas.Where(r => Leadership(r).IsLeader));
            await Task.Delay(100, Ct);
        }

        foreach (var replica in replicas)
        {
            var status = await LeadershipStatusAsync(replica);
            Assert.Equal("consul", status.GetProperty("mode").GetString());
            Assert.Equal(replica == leader, status.GetProperty("isLeader").GetBoolean());
            Assert.Equal(Leadership(leader).ReplicaId, status.GetProperty("leader").GetProperty("replica").GetString());
            Assert.Equal(leader.BaseAddress.ToString(), status.GetProperty("leader").GetProperty("address").GetString());
        }

        Assert.Equal(1, timeline.Acquisitions);
        timeline.AssertNeverTwoLeaders();
    }

    [Fact]
    public async Task The_leader_names_itself_by_its_advertised_address_as_its_Consul_registration_does()
    {
        await using var consul = await StartConsulAsync();
        await using var replica = await StartReplicaAsync(consul, settings: new Dictionary<string, string?> { ["ControlPlane:AdvertiseAddress"] = "10.1.2.3" });
        await SingleLeaderAsync([replica]);

        var status = await LeadershipStatusAsync(replica);
        Assert.Equal($"https://10.1.2.3:{replica.BaseAddress.Port}/", status.GetProperty("leader").GetProperty("address").GetString());
    }

    [Fact]
    public async Task A_stopped_leader_releases_the_lock_and_another_replica_leads_at_once()
    {
        await using var consul = await StartConsulAsync();
        var timeline = new LeadershipTimeline();
        await using var a = await StartReplicaAsync(consul, timeline);
        await using var b = await StartReplicaAsync(consul, timeline);
        await using var c = await StartReplicaAsync(consul, timeline);
        var leader = await SingleLeaderAsync([a, b, c]);
        var followers = new[] { a, b, c }.Where(r => r != leader).ToArray();
        var steps = Leadership(leader).LeaderToken;

        var stopped = Stopwatch.StartNew();
        await leader.StopAsync();

        Assert.True(steps.IsCancellationRequested);
        var next = await SingleLeaderAsync(followers);
        Assert.True(stopped.Elapsed < LockTtl + LockDelay, $"the hand-over took {stopped.Elapsed.TotalMilliseconds:0} ms");
        var other = followers.Single(f => f != next);
        await Eventually.WaitAsync(() => Leadership(other).Leader?.Replica == Leadership(next).ReplicaId, Deadline, "the remaining follower to name the new leader");
        timeline.AssertNeverTwoLeaders();
    }

    [Fact]
    public async Task A_crashed_leader_whose_session_Consul_invalidates_is_replaced_after_the_lock_delay_and_not_before()
    {
        await using var consul = await StartConsulAsync();
        var timeline = new LeadershipTimeline();
        await using var a = await StartReplicaAsync(consul, timeline);
        await using var b = await StartReplicaAsync(consul, timeline);
        var leader = await SingleLeaderAsync([a, b]);
        var follower = leader == a ? b : a;
        var leadership = Leadership(leader);
        var steps = leadership.LeaderToken;

        // The agent invalidates the crashed leader's session (its node check failed); the process itself is gone.
        var invalidated = Stopwatch.StartNew();
        Assert.True(consul.InvalidateSession(leadership.SessionId!));
        await Eventually.WaitAsync(() => steps.IsCancellationRequested, Deadline, "the invalidated leader to stop its steps");
        Assert.True(invalidated.Elapsed < LockDelay, $"the invalidated leader stopped after {invalidated.Elapsed.TotalMilliseconds:0} ms");
        await leader.StopAsync();

        await Eventually.WaitAsync(() => Leadership(follower).IsLeader, Deadline, "the follower to lead");
        Assert.InRange(invalidated.Elapsed, LockDelay, LockTtl + LockDelay + TimeSpan.FromSeconds(1));
        timeline.AssertNeverTwoLeaders();
    }

    [Fact]
    public async Task A_leader_that_cannot_renew_its_session_stops_its_leader_only_steps_before_its_TTL_has_passed()
    {
        await using var consul = await StartConsulAsync();
        var timeline = new LeadershipTimeline();
        await using var a = await StartReplicaAsync(consul, timeline);
        await using var b = await StartReplicaAsync(consul, timeline);
        var leader = await SingleLeaderAsync([a, b]);
        var leadership = Leadership(leader);

        // A long leader-only step (as canary analysis will be): it runs until its token says leadership ended.
        var stepStopped = new TaskCompletionSource<TimeSpan>(TaskCreationOptions.RunContinuationsAsynchronously);
        var outage = new Stopwatch();
        var step = leadership.RunAsLeaderAsync("a long step", async token =>
        {
            try
            {
                await Task.Delay(Timeout.InfiniteTimeSpan, token);
            }
            finally
            {
                stepStopped.TrySetResult(outage.Elapsed);
            }
        }, Ct);

        outage.Start();
        await consul.StopAsync();

        // Its last renewal began before the outage: a whole TTL after it has passed by one TTL into the outage.
        var stoppedAfter = await stepStopped.Task.WaitAsync(Deadline, Ct);
        Assert.True(stoppedAfter <= LockTtl + TimeSpan.FromMilliseconds(250), $"the step stopped {stoppedAfter.TotalMilliseconds:0} ms into the outage; TTL {LockTtl.TotalMilliseconds} ms");
        var refusal = await step.WaitAsync(Deadline, Ct);
        Assert.Equal((503, "leadership-lost"), (refusal!.Status, refusal.Reason));
        Assert.False(leadership.IsLeader);

        // Nobody leads while Consul is down: the former leader refuses leader-only steps and does not name itself.
        using var admin = leader.CreateAdminClient();
        using var add = await admin.PostAsync("v1/ca/roots", null, Ct);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, add.StatusCode);
        Assert.Equal("leader-unknown", (await add.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("reason").GetString());
        Assert.Contains(leader.Logs.Entries, e => e.EventId.Id == 1302);
        Assert.Contains(leader.Logs.Entries, e => e.EventId.Id == 1304);

        // Consul back: one replica leads again.
        await consul.StartAsync();
        await SingleLeaderAsync([a, b]);
        timeline.AssertNeverTwoLeaders();
    }

    [Fact]
    public async Task A_CA_rotation_step_on_a_follower_is_refused_naming_the_leader_and_on_the_leader_it_is_done()
    {
        await using var consul = await StartConsulAsync();
        await using var a = await StartReplicaAsync(consul);
        await using var b = await StartReplicaAsync(consul);
        var leader = await SingleLeaderAsync([a, b]);
        var follower = leader == a ? b : a;
        await Eventually.WaitAsync(() => Leadership(follower).Leader is not null, Deadline, "the follower to know the leader");
        using var onFollower = follower.CreateAdminClient();
        using var onLeader = leader.CreateAdminClient();
        var rootsBefore = await RootCountAsync(follower);

        using var add = await onFollower.PostAsync("v1/ca/roots", null, Ct);
        using var activate = await onFollower.PostAsync("v1/ca/roots/root-1/activate", null, Ct);
        using var remove = await onFollower.DeleteAsync("v1/ca/roots/no-such-root", Ct);

        foreach (var refused in new[] { add, activate, remove })
        {
            Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
            Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
            var problem = await refused.Content.ReadFromJsonAsync<JsonElement>(Ct);
            Assert.Equal("not-leader", problem.GetProperty("reason").GetString());
            Assert.Equal(Leadership(leader).ReplicaId, problem.GetProperty("leader").GetProperty("replica").GetString());
            Assert.Equal(leader.BaseAddress.ToString(), problem.GetProperty("leader").GetProperty("address").GetString());
            Assert.Contains(leader.BaseAddress.ToString(), problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        Assert.Equal(rootsBefore, await RootCountAsync(follower));
        Assert.Equal(3, follower.Logs.Entries.Count(e => e.EventId.Id == 1304));

        using var added = await onLeader.PostAsync("v1/ca/roots", null, Ct);
        Assert.Equal(HttpStatusCode.OK, added.StatusCode);
        Assert.Equal(2, (await added.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("roots").GetArrayLength());
    }

    [Fact]
    public async Task Without_Consul_the_only_replica_leads_and_says_so()
    {
        await using var single = await ControlPlaneHost.StartAsync();

        var status = await LeadershipStatusAsync(single);

        Assert.Equal("single", status.GetProperty("mode").GetString());
        Assert.True(status.GetProperty("isLeader").GetBoolean());
        Assert.Equal(single.BaseAddress.ToString(), status.GetProperty("leader").GetProperty("address").GetString());
        Assert.Equal(JsonValueKind.Null, status.GetProperty("key").ValueKind);
        Assert.False(Leadership(single).LeaderToken.CanBeCanceled);
    }

    [Theory]
    [InlineData("ControlPlane:Consul:LockTtl", "00:00:00.5000000", "ControlPlane:Consul:LockTtl is 00:00:00.5000000")]
    [InlineData("ControlPlane:Consul:LockTtl", "2.00:00:00", "ControlPlane:Consul:LockTtl is 2.00:00:00")]
    [InlineData("ControlPlane:Consul:LockDelay", "00:01:01", "ControlPlane:Consul:LockDelay is 00:01:01")]
    [InlineData("ControlPlane:Consul:LockDelay", "-00:00:01", "ControlPlane:Consul:LockDelay is -00:00:01")]
    public async Task A_lock_setting_out_of_range_stops_the_control_service_at_start_naming_the_key(string key, string value, string expected)
    {
        using var data = new TempDirectory("cp-lock-settings");
        var error = await Assert.ThrowsAnyAsync<Exception>(() => ControlPlaneHost.StartAsync(new Dictionary<string, string?> { [key] = value }, data.Path));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    private static Task<ConsulDouble> StartConsulAsync() =>
        ConsulDouble.StartAsync(new ConsulDoubleOptions { MinimumSessionTtl = TimeSpan.FromSeconds(1) });

    private static async Task<ControlPlaneHost> StartReplicaAsync(ConsulDouble consul, LeadershipTimeline? timeline = null, Dictionary<string, string?>? settings = null)
    {
        var all = new Dictionary<string, string?>
        {
            ["ControlPlane:Consul:Address"] = consul.Address.ToString(),
            ["ControlPlane:Consul:Wait"] = "00:00:05",
            ["ControlPlane:Consul:LockTtl"] = LockTtl.ToString(),
            ["ControlPlane:Consul:LockDelay"] = LockDelay.ToString(),
        };
        foreach (var (key, value) in settings ?? [])
        {
            all[key] = value;
        }

        var host = await ControlPlaneHost.StartAsync(all);
        timeline?.Follow(Leadership(host));
        return host;
    }

    private static ReplicaLeadership Leadership(ControlPlaneHost host) => host.Services.GetRequiredService<ReplicaLeadership>();

    private static async Task<ControlPlaneHost> SingleLeaderAsync(ControlPlaneHost[] replicas)
    {
        await Eventually.WaitAsync(() => replicas.Count(r => Leadership(r).IsLeader) == 1, Deadline, "exactly one leader");
        return replicas.Single(r => Leadership(r).IsLeader);
    }

    private static async Task<JsonElement> LeadershipStatusAsync(ControlPlaneHost host)
    {
        using var admin = host.CreateAdminClient();
        return await admin.GetFromJsonAsync<JsonElement>("v1/leadership", Ct);
    }

    private static async Task<int> RootCountAsync(ControlPlaneHost host)
    {
        using var admin = host.CreateAdminClient();
        return (await admin.GetFromJsonAsync<JsonElement>("v1/ca/roots", Ct)).GetProperty("roots").GetArrayLength();
    }

    /// <summary>
    /// Records each replica's leadership as it changes (read after the change, so a recorded gain is never earlier than
    /// the real one and a recorded loss never earlier either), and checks that no two replicas ever led at once.
    /// </summary>
    private sealed class LeadershipTimeline
    {
        private readonly ConcurrentQueue<(long At, string Replica, bool Leads)> _changes = new();

        public int Acquisitions => Transitions().Count(t => t.Leads);

        public void Follow(ReplicaLeadership leadership) =>
            leadership.Changed += () => _changes.Enqueue((Stopwatch.GetTimestamp(), leadership.ReplicaId, leadership.IsLeader));

        public void AssertNeverTwoLeaders()
        {
            var leading = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (_, replica, leads) in Transitions())
            {
                if (leads)
                {
                    Assert.True(leading.Count == 0, $"{replica} took the lead while {string.Join(", ", leading)} still led");
                    leading.Add(replica);
                }
                else
                {
                    leading.Remove(replica);
                }
            }
        }

        private List<(long At, string Replica, bool Leads)> Transitions()
        {
            var last = new Dictionary<string, bool>(StringComparer.Ordinal);
            var transitions = new List<(long, string, bool)>();
            foreach (var change in _changes.OrderBy(c => c.At))
            {
                if (last.GetValueOrDefault(change.Replica) != change.Leads)
                {
                    last[change.Replica] = change.Leads;
                    transitions.Add(change);
                }
            }

            return transitions;
        }
    }
}
