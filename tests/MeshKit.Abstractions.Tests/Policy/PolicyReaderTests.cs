using MeshKit.Policy;
using MeshKit.Routing;
using Microsoft.Extensions.Configuration;

namespace MeshKit.Abstractions.Tests.Policy;

[Trait("Area", "Traffic")]
public sealed class PolicyReaderTests
{
    private static PolicyReadResult Read(Dictionary<string, string?> settings) =>
        PolicyReader.Read(new ConfigurationBuilder().AddInMemoryCollection(settings).Build().GetSection("Mesh"));

    [Fact]
    public void No_policy_section_gives_the_documented_defaults()
    {
        var result = Read([]);
        Assert.True(result.IsValid);
        var defaults = result.Snapshot!.Defaults;
        Assert.Equal(TimeSpan.FromSeconds(30), defaults.Timeout);
        Assert.Equal(TimeSpan.FromSeconds(10), defaults.AttemptTimeout);
        Assert.Equal(2, defaults.Retry.MaxRetries);
        Assert.Equal(0.2, defaults.Retry.BudgetRatio);
        Assert.False(defaults.Retry.RetryAllMethods);
        Assert.Equal(5, defaults.OutlierDetection.ConsecutiveFailures);
        Assert.Equal(LoadBalancerKind.PeakEwma, defaults.LoadBalancer);
        Assert.Equal("x-mesh-subset", result.Snapshot.SubsetHeader);
    }

    [Fact]
    public void Destinations_inherit_the_defaults_they_do_not_override()
    {
        var result = Read(new()
        {
            ["Mesh:Policy:Defaults:Timeout"] = "00:00:05",
            ["Mesh:Policy:Defaults:Retry:MaxRetries"] = "1",
            ["Mesh:Policy:Destinations:orders:Retry:Budget:Ratio"] = "0.5",
        });
        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        var orders = result.Snapshot!.For("orders");
        Assert.Equal(TimeSpan.FromSeconds(5), orders.Timeout);
        Assert.Equal(1, orders.Retry.MaxRetries);
        Assert.Equal(0.5, orders.Retry.BudgetRatio);
        Assert.Equal(TimeSpan.FromSeconds(5), result.Snapshot.For("unknown").Timeout);
    }

    [Fact]
    public void The_default_route_follows_the_destinations_subset_key_and_is_shared_between_calls()
    {
        var result = Read(new() { ["Mesh:Policy:Destinations:orders:SubsetKey"] = "track" });
        var orders = result.Snapshot!.For("orders");
        var other = result.Snapshot.For("inventory");

        var route = RouteMatcher.DefaultRoute(orders);
        Assert.Equal(("default", -1, "track"), (route.Name, route.Index, route.SubsetKey));
        Assert.Equal("version", RouteMatcher.DefaultRoute(other).SubsetKey);
        Assert.Same(route, RouteMatcher.DefaultRoute(orders));
    }

    [Fact]
    public void Every_error_names_its_full_path_and_what_would_be_valid()
    {
        var result = Read(new()
        {
            ["Mesh:Policy:Destinations:orders:Routes:0:Split:v1"] = "90",
            ["Mesh:Policy:Destinations:orders:Routes:0:Split:v2"] = "ten",
            ["Mesh:Policy:Destinations:orders:Timeout"] = "soon",
            ["Mesh:Policy:Destinations:orders:Retry:Methods"] = "Some",
            ["Mesh:Policy:Destinations:orders:Retyr:MaxRetries"] = "3",
            ["Mesh:Policy:Destinations:orders:Routes:0:Match:Path:Prefix"] = "api",
            ["Mesh:Policy:Destinations:orders:Routes:0:Match:Path:Regex"] = "/x",
            ["Mesh:Policy:Destinations:orders:LoadBalancer"] = "Random",
            ["Mesh:Policy:Destinations:Orders_1:Timeout"] = "00:00:01",
            ["Mesh:Policy:Bogus"] = "1",
        });

        Assert.False(result.IsValid);
        var byPath = result.Errors.ToDictionary(e => e.Path, e => e.Message);
        Assert.Contains("whole number", byPath["Mesh:Policy:Destinations:orders:Routes:0:Split:v2"], StringComparison.Ordinal);
        Assert.Contains("00:00:02.5", byPath["Mesh:Policy:Destinations:orders:Timeout"], StringComparison.Ordinal);
        Assert.Contains("'Idempotent'", byPath["Mesh:Policy:Destinations:orders:Retry:Methods"], StringComparison.Ordinal);
        Assert.Contains("not a known setting", byPath["Mesh:Policy:Destinations:orders:Retyr"], StringComparison.Ordinal);
        Assert.Contains("exactly one of Prefix, Exact or Regex", byPath["Mesh:Policy:Destinations:orders:Routes:0:Match:Path"], StringComparison.Ordinal);
        Assert.Contains("PeakEwma, RoundRobin", byPath["Mesh:Policy:Destinations:orders:LoadBalancer"], StringComparison.Ordinal);
        Assert.Contains("destination name", byPath["Mesh:Policy:Destinations:Orders_1"], StringComparison.Ordinal);
        Assert.Contains("not a known setting", byPath["Mesh:Policy:Bogus"], StringComparison.Ordinal);
    }

    [Fact]
    public void A_split_whose_weights_sum_to_zero_is_refused()
    {
        var result = Read(new()
        {
            ["Mesh:Policy:Destinations:orders:Routes:0:Split:v1"] = "0",
            ["Mesh:Policy:Destinations:orders:Routes:0:Split:v2"] = "0",
        });
        Assert.Equal("Mesh:Policy:Destinations:orders:Routes:0:Split", Assert.Single(result.Errors).Path);
    }

    [Fact]
    public void The_version_is_a_content_hash_independent_of_key_order_and_case()
    {
        var a = Read(new() { ["Mesh:Policy:Defaults:Timeout"] = "00:00:05", ["Mesh:Policy:Destinations:orders:Retry:MaxRetries"] = "1" });
        var b = Read(new() { ["Mesh:Policy:Destinations:orders:retry:maxretries"] = "1", ["Mesh:Policy:defaults:timeout"] = "00:00:05" });
        var c = Read(new() { ["Mesh:Policy:Defaults:Timeout"] = "00:00:06" });
        Assert.Equal(a.Snapshot!.Version, b.Snapshot!.Version);
        Assert.NotEqual(a.Snapshot.Version, c.Snapshot!.Version);
    }

    [Fact]
    public void A_policy_document_in_json_reads_the_same_and_a_syntax_error_is_one_clear_error()
    {
        var result = PolicyReader.ReadJson("""
            { "Mesh": { "Policy": { "Destinations": { "orders": { "Routes": [
              { "Name": "canary", "Match": { "Path": { "Prefix": "/api" }, "Headers": { "x-beta": "yes" } }, "Split": { "v1": 90, "v2": 10 } } ] } } } } }
            """);
        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        var route = Assert.Single(result.Snapshot!.For("orders").Routes);
        Assert.Equal("canary", route.Name);
        Assert.Equal(PathMatchKind.Prefix, route.Match.PathKind);
        Assert.Equal(10, route.Split!.Percent(1));

        var broken = PolicyReader.ReadJson("{ \"Mesh\": { \"Policy\": ");
        Assert.False(broken.IsValid);
        Assert.Contains("not valid JSON", Assert.Single(broken.Errors).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Path_prefixes_match_at_segment_boundaries_and_regexes_match_the_whole_path()
    {
        var result = Read(new()
        {
            ["Mesh:Policy:Destinations:orders:Routes:0:Match:Path:Prefix"] = "/api",
            ["Mesh:Policy:Destinations:orders:Routes:1:Match:Path:Regex"] = "/items/[0-9]+",
        });
        var policy = result.Snapshot!.For("orders");
        var none = new NoHeaders();
        Assert.Equal(0, RouteMatcher.Match(policy, "GET", "/api", none)!.Index);
        Assert.Equal(0, RouteMatcher.Match(policy, "GET", "/api/x", none)!.Index);
        Assert.Null(RouteMatcher.Match(policy, "GET", "/apix", none));
        Assert.Equal(1, RouteMatcher.Match(policy, "GET", "/items/42", none)!.Index);
        Assert.Null(RouteMatcher.Match(policy, "GET", "/items/42/x", none));
    }

    [Fact]
    public void Split_keys_and_the_mirror_subset_follow_the_one_subset_name_rule_and_errors_say_why()
    {
        var long64 = "v" + new string('1', 63);
        var result = Read(new()
        {
            ["Mesh:Policy:Destinations:orders:Routes:0:Split:v1"] = "80",
            ["Mesh:Policy:Destinations:orders:Routes:0:Split:-v2"] = "10",
            ["Mesh:Policy:Destinations:orders:Routes:0:Split:" + long64] = "10",
            ["Mesh:Policy:Destinations:orders:Routes:0:Mirror:Subset"] = "v 3",
        });

        Assert.False(result.IsValid);
        var byPath = result.Errors.ToDictionary(e => e.Path, e => e.Message);
        Assert.Equal(3, byPath.Count);
        Assert.Contains("is not a subset name: it contains '-' at position 0", byPath["Mesh:Policy:Destinations:orders:Routes:0:Split:-v2"], StringComparison.Ordinal);
        Assert.Contains("longer than 63 characters", byPath["Mesh:Policy:Destinations:orders:Routes:0:Split:" + long64], StringComparison.Ordinal);
        Assert.Contains("'v 3' is not a subset name", byPath["Mesh:Policy:Destinations:orders:Routes:0:Mirror:Subset"], StringComparison.Ordinal);
    }

    [Fact]
    public void Subset_names_that_versions_can_carry_are_accepted()
    {
        var result = Read(new()
        {
            ["Mesh:Policy:Destinations:orders:Routes:0:Split:v1"] = "80",
            ["Mesh:Policy:Destinations:orders:Routes:0:Split:1.4.0-rc_1"] = "20",
            ["Mesh:Policy:Destinations:orders:Routes:0:Mirror:Subset"] = "V3",
        });

        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        var route = Assert.Single(result.Snapshot!.For("orders").Routes);
        Assert.Equal(["1.4.0-rc_1", "v1"], route.Split!.Subsets.Order(StringComparer.Ordinal));
        Assert.Equal("V3", route.Mirror!.Subset);
    }

    [Fact]
    public void Bad_destination_names_and_caller_names_say_which_part_is_wrong_and_why()
    {
        var result = Read(new()
        {
            ["Mesh:Policy:Destinations:orders.Pay:Timeout"] = "00:00:01",
            ["Mesh:Authorization:Rules:0:From:Services:0"] = "shop/Front",
            ["Mesh:Authorization:Rules:0:From:Namespaces:0"] = "-shop",
        });

        Assert.False(result.IsValid);
        var byPath = result.Errors.ToDictionary(e => e.Path, e => e.Message);
        Assert.Contains("is not a destination name: it has a namespace part that contains 'P' at position 0", byPath["Mesh:Policy:Destinations:orders.Pay"], StringComparison.Ordinal);
        Assert.Contains("has a service part that contains 'F' at position 0", byPath["Mesh:Authorization:Rules:0:From:Services:0"], StringComparison.Ordinal);
        Assert.Contains("contains '-' at position 0", byPath["Mesh:Authorization:Rules:0:From:Namespaces:0"], StringComparison.Ordinal);
    }

    private readonly struct NoHeaders : IHeaderSource
    {
        public string? Get(string name) => null;
    }
}
