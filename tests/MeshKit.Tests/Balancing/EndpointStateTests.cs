using MeshKit.Balancing;
using MeshKit.Hosting;

namespace MeshKit.Tests.Balancing;

/// <summary>Peak-EWMA latency and its decay, in virtual time: the endpoint state's clock is a fake one.</summary>
[Trait("Area", "Traffic")]
public sealed class EndpointStateTests : IAsyncDisposable
{
    private readonly BalancingClock _clock = new();

    [Fact]
    public void A_slower_sample_takes_effect_at_once_and_a_faster_one_is_weighed_in_by_the_time_since_the_last_sample()
    {
        var state = _clock.State(BalancingClock.Pool(1)[0]);
        state.RecordLatency(TimeSpan.FromMilliseconds(10), _clock.States.Now);

        _clock.Time.Advance(TimeSpan.FromSeconds(1));
        state.RecordLatency(TimeSpan.FromMilliseconds(100), _clock.States.Now);
        Assert.Equal(100, state.LatencyMs, 6);

        // One decay constant (10 s) later, the old value keeps a weight of 1/e.
        _clock.Time.Advance(TimeSpan.FromSeconds(10));
        state.RecordLatency(TimeSpan.FromMilliseconds(10), _clock.States.Now);
        Assert.Equal((100 * Math.Exp(-1)) + (10 * (1 - Math.Exp(-1))), state.LatencyMs, 6);
    }

    [Fact]
    public void A_slow_endpoint_the_balancer_stopped_choosing_is_chosen_again_once_its_latency_has_decayed()
    {
        var subset = BalancingClock.Pool(2);
        var fast = _clock.State(subset[0]);
        _clock.State(subset[1]).RecordLatency(TimeSpan.FromMilliseconds(500), _clock.States.Now);
        var balancer = _clock.PowerOfTwo(new MeshRandom(new Random(3)));

        // Once a (virtual) second, one request: the fast endpoint answers in 20 ms each time it is chosen.
        var slowChosenAt = -1;
        for (var second = 0; second <= 60 && slowChosenAt < 0; second++)
        {
            var chosen = EndpointSelector.Choose(subset, BalancingClock.Destination, _clock.States, avoid: null, _clock.States.Now, balancer);
            if (chosen == subset[1])
            {
                slowChosenAt = second;
            }
            else
            {
                fast.RecordLatency(TimeSpan.FromMilliseconds(20), _clock.States.Now);
                _clock.Time.Advance(TimeSpan.FromSeconds(1));
            }
        }

        // 500 ms × e^(-t/10 s) falls below the fast one's 20 ms (itself 1 s old, × e^-0.1) after 10 s × (ln 25 + 0.1) ≈ 33.2 s.
        Assert.Equal(34, slowChosenAt);
    }

    public ValueTask DisposeAsync() => _clock.DisposeAsync();
}
