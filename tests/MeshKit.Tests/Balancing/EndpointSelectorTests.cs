using MeshKit.Balancing;
using MeshKit.Discovery;
using MeshKit.Hosting;

namespace MeshKit.Tests.Balancing;

/// <summary>Power of two choices with the mesh's random source fixed: the balancer's choices are repeatable.</summary>
[Trait("Area", "Traffic")]
public sealed class EndpointSelectorTests : IAsyncDisposable
{
    private const int Draws = 2000;
    private readonly BalancingClock _clock = new();
    private readonly MeshEndpoint[] _subset = BalancingClock.Pool(5);

    public EndpointSelectorTests()
    {
        // Endpoint i answers in (i + 1) × 10 ms: 10.0.0.1 is the best, 10.0.0.5 the worst.
        for (var i = 0; i < _subset.Length; i++)
        {
            _clock.State(_subset[i]).RecordLatency(TimeSpan.FromMilliseconds((i + 1) * 10), _clock.States.Now);
        }
    }

    [Fact]
    public void With_the_same_seed_the_balancer_makes_the_same_choices()
    {
        var first = Choices(new MeshRandom(new Random(7)));
        var again = Choices(new MeshRandom(new Random(7)));
        var otherSeed = Choices(new MeshRandom(new Random(8)));

        Assert.Equal(first, again);
        Assert.NotEqual(first, otherSeed);
    }

    [Fact]
    public void Two_distinct_candidates_are_drawn_so_the_worst_endpoint_is_never_chosen_and_the_best_wins_whenever_drawn()
    {
        var counts = Choices(new MeshRandom(new Random(11))).CountBy(key => key).ToDictionary();

        // Of n = 5, rank k (0 = best) wins with probability 2(n-1-k) / (n(n-1)): 40 %, 30 %, 20 %, 10 %, 0 %.
        Assert.False(counts.ContainsKey(_subset[4].Key), $"the worst endpoint was chosen {counts.GetValueOrDefault(_subset[4].Key)} times");
        Assert.InRange(counts[_subset[0].Key], Draws * 0.36, Draws * 0.44);
        Assert.InRange(counts[_subset[3].Key], Draws * 0.07, Draws * 0.13);
    }

    [Fact]
    public void Each_choice_takes_exactly_two_draws_from_the_mesh_random_source()
    {
        // First draw 0.0 picks the first eligible; second draw 0.99 the last of the rest: the pair (best, worst), best wins.
        var random = new MeshKit.Tests.Hosting.ScriptedRandom(0.0, 0.99);
        var chosen = EndpointSelector.Choose(_subset, BalancingClock.Destination, _clock.States, avoid: null, _clock.States.Now, _clock.PowerOfTwo(new MeshRandom(random)));

        Assert.Equal(_subset[0], chosen);
        Assert.Equal(2, random.Taken);
    }

    public ValueTask DisposeAsync() => _clock.DisposeAsync();

    private List<string> Choices(MeshRandom random)
    {
        var chosen = new List<string>(Draws);
        var balancer = _clock.PowerOfTwo(random);
        for (var i = 0; i < Draws; i++)
        {
            chosen.Add(EndpointSelector.Choose(_subset, BalancingClock.Destination, _clock.States, avoid: null, _clock.States.Now, balancer).Key);
        }

        return chosen;
    }
}
