using System.Net;
using MeshKit.Balancing;
using MeshKit.Discovery;
using MeshKit.Hosting;
using MeshKit.Policy;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace MeshKit.Tests.Balancing;

/// <summary>
/// Outlier ejection driven directly, in virtual time: the endpoint state's clock is a <see cref="FakeTimeProvider"/>, and the
/// detector takes timestamps of that clock, so time is whatever the test says.
/// </summary>
[Trait("Area", "Traffic")]
public sealed class OutlierDetectorTests : IAsyncDisposable
{
    private const string Destination = "orders";

    private readonly FakeTimeProvider _time = new();
    private readonly MeshEndpointRegistry _endpoints;
    private readonly EndpointStateRegistry _states;

    // Far from zero (a fake clock starts in 2000): an EjectedUntil of 0 means "never ejected".
    private readonly long _start;

    public OutlierDetectorTests()
    {
        _endpoints = new([], new MeshDestinationNames("default", [], null), _time, NullLogger<MeshEndpointRegistry>.Instance);
        _states = new EndpointStateRegistry(_endpoints, _time);
        _start = _time.GetTimestamp();
    }

    [Fact]
    public void The_ejection_time_grows_with_repeated_ejections_and_decays_back_to_the_base_after_healthy_periods()
    {
        var policy = new OutlierPolicy { ConsecutiveFailures = 1, BaseEjectionTime = TimeSpan.FromSeconds(10), MaxEjectionTime = TimeSpan.FromSeconds(40) };
        var subset = Pool(3);
        var flapping = _states.Get(Destination, subset[0].Key);
        var durations = new List<double>();
        var now = _start;

        // Fails as soon as it is back, five times: 10, 20, 30, 40 s, then held at the 40 s maximum.
        for (var i = 0; i < 5; i++)
        {
            durations.Add(EjectFor(flapping, policy, subset, now));
            now = flapping.EjectedUntil;
        }

        // Back and healthy for 25 s (two whole base periods): two off the count of four, so the next lasts 3 x 10 s.
        now += Seconds(25);
        durations.Add(EjectFor(flapping, policy, subset, now));

        // Back and healthy for 100 s: the count is spent, so the next ejection is the base again.
        now = flapping.EjectedUntil + Seconds(100);
        durations.Add(EjectFor(flapping, policy, subset, now));

        double[] expected = [10, 20, 30, 40, 40, 30, 10];
        Assert.Equal(expected, durations);
    }

    [Fact]
    public void An_ejected_endpoint_is_chosen_again_once_its_ejection_time_is_over()
    {
        var policy = new DestinationPolicy
        {
            Destination = Destination,
            OutlierDetection = new OutlierPolicy { ConsecutiveFailures = 1, BaseEjectionTime = TimeSpan.FromSeconds(10) },
        };
        var subset = Pool(3);
        var ejected = subset[1];
        Assert.True(OutlierDetector.RecordFailure(_states.Get(Destination, ejected.Key), policy.OutlierDetection, subset, _states, _start));

        var whileEjected = Choices(subset, policy, _start + Seconds(10) - 1);
        var afterwards = Choices(subset, policy, _start + Seconds(10));

        Assert.DoesNotContain(ejected.Key, whileEjected);
        Assert.Equal(2, whileEjected.Count);
        Assert.Contains(ejected.Key, afterwards);
        Assert.Equal(3, afterwards.Count);
    }

    [Fact]
    public void MaxEjectionPercent_caps_how_many_endpoints_are_ejected_at_once()
    {
        var policy = new OutlierPolicy { ConsecutiveFailures = 1, BaseEjectionTime = TimeSpan.FromSeconds(10), MaxEjectionPercent = 30 };
        var subset = Pool(10);

        // Every endpoint fails, twice over: 30 % of ten is three.
        for (var round = 0; round < 2; round++)
        {
            foreach (var endpoint in subset)
            {
                OutlierDetector.RecordFailure(_states.Get(Destination, endpoint.Key), policy, subset, _states, _start + round);
            }
        }

        Assert.Equal(3, EjectedAt(subset, _start + 2));

        // Once those three are back, three others may go (the first three fail no more).
        var next = _start + Seconds(10);
        foreach (var endpoint in subset)
        {
            var state = _states.Get(Destination, endpoint.Key);
            if (state.Ejections == 0)
            {
                OutlierDetector.RecordFailure(state, policy, subset, _states, next);
            }
        }

        Assert.Equal(3, EjectedAt(subset, next));
    }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void The_last_healthy_endpoint_is_never_ejected_even_at_100_percent(int size)
    {
        var policy = new OutlierPolicy { ConsecutiveFailures = 1, MaxEjectionPercent = 100 };
        var subset = Pool(size);

        foreach (var endpoint in subset)
        {
            OutlierDetector.RecordFailure(_states.Get(Destination, endpoint.Key), policy, subset, _states, _start);
        }

        Assert.Equal(size - 1, EjectedAt(subset, _start + 1));
    }

    [Fact]
    public void A_destination_with_one_endpoint_never_ejects_it()
    {
        var policy = new OutlierPolicy { ConsecutiveFailures = 1, MaxEjectionPercent = 100 };
        var subset = Pool(1);

        Assert.False(OutlierDetector.RecordFailure(_states.Get(Destination, subset[0].Key), policy, subset, _states, _start));
        Assert.Equal(0, EjectedAt(subset, _start));
    }

    [Fact]
    public void EjectedNow_lists_an_endpoint_until_its_ejection_time_has_passed_on_the_mesh_clock()
    {
        // What the control channel reports as ejected: read on the endpoint state's clock, not the machine's.
        var policy = new OutlierPolicy { ConsecutiveFailures = 1, BaseEjectionTime = TimeSpan.FromSeconds(30) };
        var subset = Pool(3);
        Assert.True(OutlierDetector.RecordFailure(_states.Get(Destination, subset[2].Key), policy, subset, _states, _states.Now));

        _time.Advance(TimeSpan.FromSeconds(29.999));
        Assert.Equal([(Destination, subset[2].Key)], _states.EjectedNow());

        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Empty(_states.EjectedNow());
    }

    public ValueTask DisposeAsync() => _endpoints.DisposeAsync();

    private long Seconds(double seconds) => (long)(seconds * _time.TimestampFrequency);

    private static MeshEndpoint[] Pool(int size) =>
        [.. Enumerable.Range(1, size).Select(i => new MeshEndpoint(new IPEndPoint(IPAddress.Parse($"10.0.0.{i}"), 8443), MeshEndpointMetadata.Empty))];

    /// <summary>Fails the endpoint once at <paramref name="now"/> and returns how long it was ejected for, in seconds.</summary>
    private double EjectFor(EndpointState state, OutlierPolicy policy, MeshEndpoint[] subset, long now)
    {
        Assert.True(OutlierDetector.RecordFailure(state, policy, subset, _states, now), "the failure did not eject the endpoint");
        return Math.Round((state.EjectedUntil - now) / (double)_time.TimestampFrequency, 3);
    }

    private int EjectedAt(MeshEndpoint[] subset, long now) =>
        subset.Count(e => _states.Find(Destination, e.Key)?.IsEjected(now) == true);

    private HashSet<string> Choices(MeshEndpoint[] subset, DestinationPolicy policy, long now)
    {
        var chosen = new HashSet<string>();
        var balancer = ILoadBalancingPolicy.Create(policy.LoadBalancer, Destination, _states, new MeshRandom(new Random(16)));
        for (var i = 0; i < 100; i++)
        {
            chosen.Add(EndpointSelector.Choose(subset, Destination, _states, avoid: null, now, balancer).Key);
        }

        return chosen;
    }
}
