using MeshKit.Balancing;
using MeshKit.Discovery;
using MeshKit.Policy;

namespace MeshKit.Tests.Balancing;

/// <summary>
/// What every algorithm is given to choose from: not the ejected endpoints (unless all are: panic), not the one that just
/// failed (unless it is the only one left), not an endpoint of weight 0 (unless every candidate left has weight 0).
/// </summary>
[Trait("Area", "Traffic")]
public sealed class EndpointSelectorFilteringTests : IAsyncDisposable
{
    private const int Draws = 400;
    private readonly BalancingClock _clock = new();

    [Theory]
    [InlineData(LoadBalancerKind.PeakEwma)]
    [InlineData(LoadBalancerKind.RoundRobin)]
    public void An_endpoint_of_weight_0_gets_no_traffic(LoadBalancerKind kind)
    {
        var subset = BalancingClock.Weighted(100, 0, 100);

        var chosen = Choices(kind, subset);

        Assert.Equal([subset[0].Key, subset[2].Key], chosen.Keys.Order());
    }

    [Theory]
    [InlineData(LoadBalancerKind.PeakEwma)]
    [InlineData(LoadBalancerKind.RoundRobin)]
    public void When_every_endpoint_has_weight_0_they_share_the_traffic_as_equals(LoadBalancerKind kind)
    {
        var subset = BalancingClock.Weighted(0, 0, 0);

        var chosen = Choices(kind, subset);

        Assert.Equal(3, chosen.Count);
        Assert.All(chosen.Values, count => Assert.InRange(count, Draws / 3 * 0.8, Draws / 3 * 1.2));
    }

    [Theory]
    [InlineData(LoadBalancerKind.PeakEwma)]
    [InlineData(LoadBalancerKind.RoundRobin)]
    public void The_endpoint_that_just_failed_is_avoided_while_another_is_left(LoadBalancerKind kind)
    {
        var subset = BalancingClock.Weighted(100, 100, 100);

        var chosen = Choices(kind, subset, avoid: subset[1].Key);

        Assert.Equal([subset[0].Key, subset[2].Key], chosen.Keys.Order());
    }

    [Theory]
    [InlineData(LoadBalancerKind.PeakEwma)]
    [InlineData(LoadBalancerKind.RoundRobin)]
    public void The_endpoint_that_just_failed_is_chosen_again_when_every_other_is_ejected(LoadBalancerKind kind)
    {
        var subset = BalancingClock.Weighted(100, 100, 100);
        Eject(subset[0]);
        Eject(subset[2]);

        var chosen = Choices(kind, subset, avoid: subset[1].Key);

        Assert.Equal([subset[1].Key], chosen.Keys);
    }

    [Theory]
    [InlineData(LoadBalancerKind.PeakEwma)]
    [InlineData(LoadBalancerKind.RoundRobin)]
    public void A_weight_0_endpoint_is_a_last_resort_before_the_failed_or_ejected_ones(LoadBalancerKind kind)
    {
        // Retrying away from the only weighted endpoint goes to the weight-0 one rather than back to the one that failed.
        var subset = BalancingClock.Weighted(100, 0);
        Assert.Equal([subset[1].Key], Choices(kind, subset, avoid: subset[0].Key).Keys);

        // With the weighted endpoints ejected, the weight-0 one rather than panic mode.
        var larger = BalancingClock.Weighted(100, 0, 100);
        Eject(larger[0]);
        Eject(larger[2]);
        Assert.Equal([larger[1].Key], Choices(kind, larger).Keys);
    }

    [Theory]
    [InlineData(LoadBalancerKind.PeakEwma)]
    [InlineData(LoadBalancerKind.RoundRobin)]
    public void When_every_endpoint_is_ejected_panic_mode_uses_them_all(LoadBalancerKind kind)
    {
        var subset = BalancingClock.Weighted(100, 100, 100);
        foreach (var endpoint in subset)
        {
            Eject(endpoint);
        }

        Assert.Equal(3, Choices(kind, subset).Count);
    }

    [Fact]
    public void Round_robin_takes_turns_among_the_endpoints_left_when_one_is_ejected()
    {
        var subset = BalancingClock.Pool(3);
        Eject(subset[1]);
        var balancer = ILoadBalancingPolicy.Create(LoadBalancerKind.RoundRobin, BalancingClock.Destination, _clock.States, new MeshRandom(new Random(2)));

        var turns = new List<MeshEndpoint>();
        for (var i = 0; i < 6; i++)
        {
            turns.Add(EndpointSelector.Choose(subset, BalancingClock.Destination, _clock.States, avoid: null, _clock.States.Now, balancer));
        }

        Assert.DoesNotContain(subset[1], turns);
        for (var i = 1; i < turns.Count; i++)
        {
            Assert.NotEqual(turns[i - 1], turns[i]);
        }
    }

    [Fact]
    public void More_candidates_than_fit_on_the_stack_are_filtered_the_same_way()
    {
        var subset = BalancingClock.Pool(40);
        for (var i = 0; i < 40; i += 2)
        {
            Eject(subset[i]);
        }

        var chosen = Choices(LoadBalancerKind.RoundRobin, subset, avoid: subset[1].Key);

        Assert.Equal(19, chosen.Count);
        Assert.DoesNotContain(subset[1].Key, chosen.Keys);
        Assert.All(chosen.Keys, key => Assert.Equal(1, Array.FindIndex(subset, e => e.Key == key) % 2));
    }

    [Theory]
    [InlineData(LoadBalancerKind.PeakEwma, 3, 0)]
    [InlineData(LoadBalancerKind.PeakEwma, 5, 1)]
    [InlineData(LoadBalancerKind.PeakEwma, 40, 2)]
    [InlineData(LoadBalancerKind.RoundRobin, 3, 0)]
    [InlineData(LoadBalancerKind.RoundRobin, 5, 1)]
    [InlineData(LoadBalancerKind.RoundRobin, 40, 2)]
    public void A_choice_allocates_nothing_whether_or_not_candidates_are_left_out(LoadBalancerKind kind, int size, int ejected)
    {
        // Unequal weights (the weighted paths), some endpoints ejected and one avoided (candidates copied: on the stack up
        // to 16, a pooled array beyond).
        var subset = BalancingClock.Weighted([.. Enumerable.Range(1, size).Select(i => i * 100)]);
        for (var i = 0; i < ejected; i++)
        {
            Eject(subset[i]);
            _clock.State(subset[subset.Length - 1 - i]).RecordLatency(TimeSpan.FromMilliseconds(5), _clock.States.Now);
        }

        foreach (var endpoint in subset)
        {
            _clock.State(endpoint); // an endpoint's state is made once, on first use
        }

        var avoid = ejected > 0 ? subset[^1].Key : null;
        var balancer = ILoadBalancingPolicy.Create(kind, BalancingClock.Destination, _clock.States, new MeshRandom(new Random(3)));
        var now = _clock.States.Now;
        EndpointSelector.Choose(subset, BalancingClock.Destination, _clock.States, avoid, now, balancer);

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++)
        {
            EndpointSelector.Choose(subset, BalancingClock.Destination, _clock.States, avoid, now, balancer);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    public ValueTask DisposeAsync() => _clock.DisposeAsync();

    private void Eject(MeshEndpoint endpoint) =>
        _clock.State(endpoint).Eject(_clock.States.Now + _clock.States.ToTimestamp(TimeSpan.FromMinutes(1)), 1);

    private Dictionary<string, int> Choices(LoadBalancerKind kind, MeshEndpoint[] subset, string? avoid = null)
    {
        var balancer = ILoadBalancingPolicy.Create(kind, BalancingClock.Destination, _clock.States, new MeshRandom(new Random(13)));
        var counts = new Dictionary<string, int>();
        for (var i = 0; i < Draws; i++)
        {
            var key = EndpointSelector.Choose(subset, BalancingClock.Destination, _clock.States, avoid, _clock.States.Now, balancer).Key;
            counts[key] = counts.GetValueOrDefault(key) + 1;
        }

        return counts;
    }
}
