using MeshKit.Balancing;
using MeshKit.Discovery;
using MeshKit.Tests.Hosting;

namespace MeshKit.Tests.Balancing;

/// <summary>The default algorithm with a fixed seed and a fake clock: the lower weighted score wins, and weight shares the load.</summary>
[Trait("Area", "Traffic")]
public sealed class PeakEwmaPowerOfTwoChoicesTests : IAsyncDisposable
{
    private readonly BalancingClock _clock = new();

    [Fact]
    public void Of_the_two_candidates_drawn_the_one_with_the_lower_score_wins_whichever_is_drawn_first()
    {
        var subset = BalancingClock.Weighted(100, 100);
        Latency(subset[0], 40);
        Latency(subset[1], 10);

        // Draws (0.0, 0.0) give the pair (first, second); (0.99, 0.0) give (second, first): the faster one both times.
        Assert.Equal(subset[1], _clock.PowerOfTwo(new MeshRandom(new ScriptedRandom(0.0, 0.0))).Choose(subset, _clock.States.Now));
        Assert.Equal(subset[1], _clock.PowerOfTwo(new MeshRandom(new ScriptedRandom(0.99, 0.0))).Choose(subset, _clock.States.Now));
    }

    [Fact]
    public void Requests_in_flight_count_in_the_score()
    {
        var subset = BalancingClock.Weighted(100, 100);
        Latency(subset[0], 10);
        Latency(subset[1], 10);
        _clock.State(subset[0]).Started();

        Assert.Equal(subset[1], _clock.PowerOfTwo(new MeshRandom(new Random(1))).Choose(subset, _clock.States.Now));
    }

    [Fact]
    public void The_score_is_divided_by_the_weight_so_a_heavier_endpoint_wins_unless_it_is_slower_by_more_than_its_weight()
    {
        var subset = BalancingClock.Weighted(300, 100);
        var balancer = _clock.PowerOfTwo(new MeshRandom(new Random(4)));

        // (20 ms + 1) / 300 < (10 ms + 1) / 100: three times the weight outweighs twice the latency.
        Latency(subset[0], 20);
        Latency(subset[1], 10);
        Assert.Equal(subset[0], balancer.Choose(subset, _clock.States.Now));

        // (50 ms + 1) / 300 > (10 ms + 1) / 100: five times the latency is not made up for.
        Latency(subset[0], 50);
        Assert.Equal(subset[1], balancer.Choose(subset, _clock.States.Now));
    }

    [Theory]
    [InlineData(new[] { 300, 100 }, new[] { 75.0, 25.0 })]
    [InlineData(new[] { 100, 100 }, new[] { 50.0, 50.0 })]
    [InlineData(new[] { 200, 100, 100 }, new[] { 50.0, 25.0, 25.0 })]
    public void Under_load_each_endpoint_gets_traffic_in_proportion_to_its_weight(int[] weights, double[] percent)
    {
        var subset = BalancingClock.Weighted(weights);
        foreach (var endpoint in subset)
        {
            Latency(endpoint, 10);
        }

        // A closed loop of 200 requests in flight, the oldest finishing before each new one: 10,000 choices after warm-up.
        const int Concurrency = 200;
        const int Draws = 10_000;
        var balancer = _clock.PowerOfTwo(new MeshRandom(new Random(17)));
        var inFlight = new Queue<EndpointState>();
        var counts = new int[subset.Length];
        for (var i = 0; i < Concurrency + Draws; i++)
        {
            if (inFlight.Count == Concurrency)
            {
                inFlight.Dequeue().Finished();
            }

            var chosen = EndpointSelector.Choose(subset, BalancingClock.Destination, _clock.States, avoid: null, _clock.States.Now, balancer);
            var state = _clock.State(chosen);
            state.Started();
            inFlight.Enqueue(state);
            if (i >= Concurrency)
            {
                counts[Array.IndexOf(subset, chosen)]++;
            }
        }

        for (var i = 0; i < subset.Length; i++)
        {
            Assert.InRange(100.0 * counts[i] / Draws, percent[i] - 3, percent[i] + 3);
        }
    }

    public ValueTask DisposeAsync() => _clock.DisposeAsync();

    private void Latency(MeshEndpoint endpoint, int milliseconds)
    {
        _clock.Time.Advance(TimeSpan.FromTicks(1));
        _clock.State(endpoint).RecordLatency(TimeSpan.FromMilliseconds(milliseconds), _clock.States.Now);
    }
}
