using MeshKit.Testing;

namespace MeshKit.Consul.Tests.Discovery;

/// <summary>The last-known cache: it outlives consumers, pushes changes, and keeps serving through a Consul outage.</summary>
[Trait("Area", "Discovery")]
public sealed class ConsulServiceWatcherTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_watcher_serves_the_last_known_instances_while_Consul_is_down_and_resumes_after_restart()
    {
        await using var consul = await ConsulTestContext.WithDoubleAsync();
        var consulDouble = consul.Double!;
        var client = consul.CreateClient();
        await using var watcher = new ConsulServiceWatcher(client, consul.Logger<ConsulServiceWatcher>());
        var service = ConsulTestContext.UniqueName("orders");
        var first = consul.Instance(service);
        await client.RegisterServiceAsync(first, Ct);
        var watch = watcher.Watch(service);
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct))
        {
            timeout.CancelAfter(Deadline);
            Assert.Single((await watch.WaitForInstancesAsync(timeout.Token)).Instances);
        }

        Assert.Equal(TimeSpan.Zero, watch.Staleness);

        await consulDouble.StopAsync();
        await Eventually.WaitAsync(() => watch.ConsecutiveFailures >= 2, Deadline, "the watch to notice the outage");

        // Static stability: the last known instance is still served, to this consumer and to a new one.
        Assert.Equal(first.Id, Assert.Single(watch.Current!.Instances).Service.Id);
        Assert.Same(watch, watcher.Watch(service));
        Assert.True(watch.Staleness > TimeSpan.Zero);
        Assert.Equal(ConsulErrorKind.Unreachable, watch.LastError?.Kind);
        Assert.Contains(consul.Logs.Entries, e => e.EventId.Id == 4110 && e.Message.Contains("Unreachable", StringComparison.Ordinal));

        var changed = watch.GetChangeToken();
        await consulDouble.StartAsync();
        var second = consul.Instance(service, address: "10.0.0.2");
        await client.RegisterServiceAsync(second, Ct);

        await Eventually.WaitAsync(() => watch.Current!.Instances.Count == 2, Deadline, "updates to resume after the restart");
        Assert.True(changed.HasChanged);
        Assert.Equal(0, watch.ConsecutiveFailures);
        Assert.Equal(TimeSpan.Zero, watch.Staleness);
    }

    [Fact]
    public async Task A_change_fires_the_change_token_and_a_throwing_callback_does_not_stop_the_watch()
    {
        await using var consul = await ConsulTestContext.WithDoubleAsync();
        var client = consul.CreateClient();
        await using var watcher = new ConsulServiceWatcher(client, consul.Logger<ConsulServiceWatcher>());
        var service = ConsulTestContext.UniqueName("orders");
        var watch = watcher.Watch(service);
        await Eventually.WaitAsync(() => watch.Current is not null, Deadline, "the first answer");
        Assert.Empty(watch.Current!.Instances);

        var token = watch.GetChangeToken();
        var fired = 0;
        using var throwing = token.RegisterChangeCallback(_ => throw new InvalidOperationException("a consumer's bug"), null);
        using var counting = token.RegisterChangeCallback(_ => Interlocked.Increment(ref fired), null);
        await client.RegisterServiceAsync(consul.Instance(service), Ct);

        await Eventually.WaitAsync(() => Volatile.Read(ref fired) == 1, Deadline, "the change callback");
        Assert.Single(watch.Current!.Instances);
        Assert.False(watch.GetChangeToken().HasChanged);
        Assert.Contains(consul.Logs.Entries, e => e.EventId.Id == 4122);

        await client.RegisterServiceAsync(consul.Instance(service, address: "10.0.0.2"), Ct);
        await Eventually.WaitAsync(() => watch.Current!.Instances.Count == 2, Deadline, "the watch to keep going");
    }

    [Fact]
    public async Task Before_Consul_first_answers_nothing_is_served_and_waiting_can_be_cancelled()
    {
        await using var consul = await ConsulTestContext.WithDoubleAsync();
        await consul.Double!.StopAsync();
        var client = consul.CreateClient();
        await using var watcher = new ConsulServiceWatcher(client, consul.Logger<ConsulServiceWatcher>());
        var watch = watcher.Watch("orders");

        using var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => watch.WaitForInstancesAsync(timeout.Token));

        Assert.Null(watch.Current);
        Assert.Null(watch.LastSuccessAt);
        Assert.True(watch.Staleness > TimeSpan.Zero);
        Assert.Equal(["orders"], watcher.WatchedServices);
    }
}
