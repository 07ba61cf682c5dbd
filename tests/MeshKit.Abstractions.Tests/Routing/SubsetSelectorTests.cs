using System.Collections.Immutable;
using MeshKit.Routing;

namespace MeshKit.Abstractions.Tests.Routing;

[Trait("Area", "Traffic")]
public sealed class SubsetSelectorTests
{
    private static readonly RoutePolicy Canary = new()
    {
        Name = "canary",
        Index = 0,
        SubsetKey = "version",
        Split = new SubsetSplit(["v1", "v2"], [90, 10]),
    };

    [Fact]
    public void The_override_header_wins_over_the_split()
    {
        var choice = SubsetSelector.Select("x-mesh-subset", Canary, new Headers(("x-mesh-subset", "v3")), draw: 0);

        Assert.Equal(new SubsetChoice("v3", "header"), choice);
    }

    [Theory]
    [InlineData(0, "v1", 0)]
    [InlineData(89, "v1", 0)]
    [InlineData(90, "v2", 1)]
    [InlineData(99, "v2", 1)]
    public void Without_the_header_the_draw_picks_by_cumulative_weight(int draw, string subset, int index)
    {
        var choice = SubsetSelector.Select("x-mesh-subset", Canary, new Headers(("x-other", "v3")), draw);

        Assert.Equal(new SubsetChoice(subset, "split", index), choice);
    }

    [Fact]
    public void An_empty_override_header_does_not_override()
    {
        var choice = SubsetSelector.Select("x-mesh-subset", Canary, new Headers(("x-mesh-subset", "")), draw: 95);

        Assert.Equal("v2", choice.Subset);
        Assert.Equal("split", choice.Reason);
    }

    [Fact]
    public void A_route_without_a_split_names_no_subset()
    {
        var route = new RoutePolicy { Name = "plain", Index = 0, SubsetKey = "version" };

        var choice = SubsetSelector.Select(null, route, new Headers(("x-mesh-subset", "v2")), draw: 0);

        Assert.Equal(new SubsetChoice(null, "none"), choice);
    }

    private readonly struct Headers(params (string Name, string Value)[] values) : IHeaderSource
    {
        public string? Get(string name) =>
            values.Where(v => string.Equals(v.Name, name, StringComparison.OrdinalIgnoreCase)).Select(v => v.Value).FirstOrDefault();
    }
}
