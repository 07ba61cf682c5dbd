using System.Net;
using MeshKit.Balancing;
using MeshKit.Discovery;
using MeshKit.Policy;
using MeshKit.Telemetry;
using MeshKit.Tests.CallPaths;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Tests.Balancing;

/// <summary>Round robin with a fixed seed: exact turns, weights honoured over a cycle, one position per destination.</summary>
[Trait("Area", "Traffic")]
public sealed class RoundRobinTests
{
    private static readonly MeshRandom Seeded = new(new Random(5));

    [Fact]
    public void With_equal_weights_the_endpoints_take_turns_in_order()
    {
        var subset = BalancingClock.Pool(4);
        var turns = Turns(new RoundRobin(Seeded), subset, 12);

        for (var i = 1; i < turns.Count; i++)
        {
            Assert.Equal((turns[i - 1] + 1) % subset.Length, turns[i]);
        }
    }

    [Theory]
    [InlineData(new[] { 300, 100 }, "ABAA")]
    [InlineData(new[] { 200, 100, 100 }, "ABCA")]
    [InlineData(new[] { 5, 1, 1 }, "ABCAAAA")]
    [InlineData(new[] { 100, 300 }, "ABBB")]
    public void With_unequal_weights_each_cycle_gives_every_endpoint_its_weight_in_turns_interleaved(int[] weights, string cycle)
    {
        var subset = BalancingClock.Weighted(weights);
        var turns = Turns(new RoundRobin(Seeded), subset, cycle.Length * 3);
        var letters = new string([.. turns.Select(i => (char)('A' + i))]);

        // The position starts at a random turn: the sequence is the cycle, repeated, from some point of it.
        var offset = (cycle + cycle).IndexOf(letters[..cycle.Length], StringComparison.Ordinal);
        Assert.True(offset >= 0, $"{letters} is not {cycle} repeated");
        var expected = string.Concat(Enumerable.Repeat(cycle, 4))[offset..(offset + letters.Length)];
        Assert.Equal(expected, letters);
    }

    [Theory]
    [InlineData(new[] { 500, 300, 200 })]
    [InlineData(new[] { 101, 100 })]
    [InlineData(new[] { 1_000_000, 1, 999_999 })]
    public void Over_a_whole_cycle_the_shares_are_exactly_the_weights(int[] weights)
    {
        var subset = BalancingClock.Weighted(weights);
        var divisor = weights.Aggregate((a, b) => (int)System.Numerics.BigInteger.GreatestCommonDivisor(a, b));
        var cycle = weights.Sum(w => (long)w) / divisor;
        var counts = new long[subset.Length];
        var balancer = new RoundRobin(Seeded);
        for (var i = 0L; i < cycle; i++)
        {
            counts[Array.IndexOf(subset, balancer.Choose(subset, 0))]++;
        }

        Assert.Equal(weights.Select(w => (long)w / divisor), counts);
    }

    [Fact]
    public void Two_instances_keep_their_own_position()
    {
        var orders = BalancingClock.Pool(2);
        var payments = BalancingClock.Pool(2);
        var ordersBalancer = new RoundRobin(Seeded);
        var paymentsBalancer = new RoundRobin(Seeded);

        var ordersTurns = new List<int>();
        for (var i = 0; i < 8; i++)
        {
            ordersTurns.Add(Array.IndexOf(orders, ordersBalancer.Choose(orders, 0)));
            paymentsBalancer.Choose(payments, 0);
        }

        Assert.Equal(4, ordersTurns.Count(t => t == 0));
        Assert.Equal(4, ordersTurns.Count(t => t == 1));
    }

    [Fact]
    public async Task Two_destinations_called_in_turn_each_alternate_between_their_own_endpoints()
    {
        // Each destination's endpoint stage (one per call path) has its own round robin; calls to one do not move the other's.
        using var bed = new CallPathBed(
            (_, _, _) => CallPathBed.Answer(HttpStatusCode.OK),
            new Dictionary<string, string?>
            {
                ["Mesh:Discovery:Static:payments:0:Address"] = "10.0.1.1:8443",
                ["Mesh:Discovery:Static:payments:1:Address"] = "10.0.1.2:8443",
            },
            random: new Random(9));
        var orders = Stage(bed, "orders");
        var payments = Stage(bed, "payments");

        var ordersChosen = new List<string>();
        var paymentsChosen = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            ordersChosen.Add((await orders.ChooseAsync(null, "version", "default", "default", null, CancellationToken.None)).Endpoint.Key);
            paymentsChosen.Add((await payments.ChooseAsync(null, "version", "default", "default", null, CancellationToken.None)).Endpoint.Key);
        }

        for (var i = 1; i < 6; i++)
        {
            Assert.NotEqual(ordersChosen[i - 1], ordersChosen[i]);
            Assert.NotEqual(paymentsChosen[i - 1], paymentsChosen[i]);
        }
    }

    [Fact]
    public async Task Through_the_call_path_the_weights_discovery_reports_set_each_endpoints_turns()
    {
        // Static discovery's Weight reaches the balancer: 300 and 100 give three turns in four to the first endpoint.
        var served = new List<string>();
        using var bed = new CallPathBed(
            (endpoint, _, _) =>
            {
                served.Add(endpoint);
                return CallPathBed.Answer(HttpStatusCode.OK);
            },
            new Dictionary<string, string?>
            {
                ["Mesh:Policy:Defaults:LoadBalancer"] = "RoundRobin",
                ["Mesh:Discovery:Static:orders:0:Weight"] = "300",
                ["Mesh:Discovery:Static:orders:1:Weight"] = "100",
            },
            random: new Random(6));

        for (var i = 0; i < 40; i++)
        {
            using var response = await bed.Client.GetAsync("/api", TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Equal(30, served.Count(e => e == "10.0.0.1:8443"));
        Assert.Equal(10, served.Count(e => e == "10.0.0.2:8443"));
    }

    private static EndpointStage Stage(CallPathBed bed, string destination) => new(
        destination,
        new DestinationPolicy { Destination = destination, LoadBalancer = LoadBalancerKind.RoundRobin },
        bed.Services.GetRequiredService<MeshEndpointRegistry>(),
        bed.Services.GetRequiredService<EndpointStateRegistry>(),
        bed.Services.GetRequiredService<MeshRandom>(),
        bed.Services.GetRequiredService<MeshMetrics>());

    private static List<int> Turns(RoundRobin balancer, MeshEndpoint[] subset, int count)
    {
        var turns = new List<int>(count);
        for (var i = 0; i < count; i++)
        {
            turns.Add(Array.IndexOf(subset, balancer.Choose(subset, 0)));
        }

        return turns;
    }
}
