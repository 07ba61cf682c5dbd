using MeshKit.Policy;
using Microsoft.Extensions.Configuration;

namespace MeshKit.Abstractions.Tests.Policy;

/// <summary>
/// <c>Routes:&lt;n&gt;:Canary</c>: the automated canary's spec is read with the rest of the policy, its steps built from a
/// list or from a step and a maximum, and every mistake named by its full key.
/// </summary>
[Trait("Area", "Canary")]
public sealed class CanaryPolicyReaderTests
{
    private const string Route = "Mesh:Policy:Destinations:orders:Routes:0";

    private static PolicyReadResult Read(Dictionary<string, string?> settings) =>
        PolicyReader.Read(new ConfigurationBuilder().AddInMemoryCollection(settings).Build().GetSection("Mesh"));

    private static Dictionary<string, string?> Canary(params (string Key, string? Value)[] extra)
    {
        var settings = new Dictionary<string, string?>
        {
            [$"{Route}:Name"] = "canary",
            [$"{Route}:Split:v1"] = "100",
            [$"{Route}:Split:v2"] = "0",
            [$"{Route}:Canary:StableSubset"] = "v1",
            [$"{Route}:Canary:CanarySubset"] = "v2",
        };
        foreach (var (key, value) in extra)
        {
            settings[$"{Route}:{key}"] = value;
        }

        return settings;
    }

    [Fact]
    public void A_canary_with_only_its_subsets_takes_Flaggers_defaults()
    {
        var result = Read(Canary());

        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        var canary = result.Snapshot!.For("orders").Routes[0].Canary!;
        Assert.Equal(("v1", "v2"), (canary.StableSubset, canary.CanarySubset));
        Assert.Equal([10, 20, 30, 40, 50], canary.Steps);
        Assert.Equal(TimeSpan.FromMinutes(1), canary.Interval);
        Assert.Equal(99, canary.MinSuccessRate);
        Assert.Equal(TimeSpan.FromMilliseconds(500), canary.MaxP99);
        Assert.Equal(5, canary.FailedChecks);
        Assert.Equal(20, canary.MinRequests);
        Assert.Null(canary.MaxSuccessRateDrop);
        Assert.Null(canary.MaxP99Increase);
        Assert.True(canary.Promote);
    }

    [Fact]
    public void Steps_come_from_a_list_or_from_a_step_up_to_a_maximum_that_is_always_the_last_step()
    {
        var listed = Read(Canary(("Canary:Steps:0", "5"), ("Canary:Steps:1", "25"), ("Canary:Steps:2", "60"), ("Canary:Interval", "00:00:02"), ("Canary:Promote", "false")));
        var stepped = Read(Canary(("Canary:StepWeight", "20"), ("Canary:MaxWeight", "50")));

        Assert.True(listed.IsValid, string.Join("\n", listed.Errors));
        Assert.True(stepped.IsValid, string.Join("\n", stepped.Errors));
        var fromList = listed.Snapshot!.For("orders").Routes[0].Canary!;
        Assert.Equal([5, 25, 60], fromList.Steps);
        Assert.Equal(TimeSpan.FromSeconds(2), fromList.Interval);
        Assert.False(fromList.Promote);
        Assert.Equal([20, 40, 50], stepped.Snapshot!.For("orders").Routes[0].Canary!.Steps);
    }

    [Theory]
    [InlineData("Canary:CanarySubset", "v1", "Mesh:Policy:Destinations:orders:Routes:0:Canary:CanarySubset", "the same as StableSubset")]
    [InlineData("Canary:StableSubset", "v 1", "Mesh:Policy:Destinations:orders:Routes:0:Canary:StableSubset", "is not a subset name")]
    [InlineData("Canary:Steps:1", "5", "Mesh:Policy:Destinations:orders:Routes:0:Canary:Steps:1", "steps rise")]
    [InlineData("Canary:MaxWeight", "5", "Mesh:Policy:Destinations:orders:Routes:0:Canary:MaxWeight", "below StepWeight 10")]
    [InlineData("Canary:MinSuccessRate", "101", "Mesh:Policy:Destinations:orders:Routes:0:Canary:MinSuccessRate", "101")]
    [InlineData("Canary:Interval", "00:00:00.5", "Mesh:Policy:Destinations:orders:Routes:0:Canary:Interval", "00:00:01")]
    [InlineData("Canary:Thresholds", "1", "Mesh:Policy:Destinations:orders:Routes:0:Canary:Thresholds", "is not a known setting")]
    [InlineData("Split:v3", "5", "Mesh:Policy:Destinations:orders:Routes:0:Canary", "exactly its two subsets")]
    public void A_mistake_in_a_canary_is_named_by_its_full_key(string key, string value, string errorKey, string words)
    {
        var settings = Canary((key, value));
        if (key == "Canary:Steps:1")
        {
            settings[$"{Route}:Canary:Steps:0"] = "10";
        }

        var result = Read(settings);

        Assert.False(result.IsValid);
        Assert.Contains(result.Errors, e => e.Path == errorKey && e.ToString().Contains(words, StringComparison.Ordinal));
    }

    [Fact]
    public void A_canary_without_a_split_starts_with_all_traffic_on_its_stable_subset()
    {
        var result = Read(new()
        {
            [$"{Route}:Canary:StableSubset"] = "v1",
            [$"{Route}:Canary:CanarySubset"] = "v2",
        });

        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        var split = result.Snapshot!.For("orders").Routes[0].Split!;
        Assert.Equal(["v1", "v2"], split.Subsets);
        Assert.Equal([100, 0], split.Weights);
    }

    [Fact]
    public void A_canary_needs_its_two_subsets_and_one_setting_of_its_steps()
    {
        var both = Read(Canary(("Canary:Steps:0", "10"), ("Canary:StepWeight", "10")));
        var missing = Read(new() { [$"{Route}:Split:v1"] = "1", [$"{Route}:Split:v2"] = "1", [$"{Route}:Canary:Interval"] = "00:00:05" });

        Assert.Contains(both.Errors, e => e.Path == $"{Route}:Canary:Steps" && e.ToString().Contains("keep one", StringComparison.Ordinal));
        Assert.Contains(missing.Errors, e => e.Path == $"{Route}:Canary:StableSubset");
        Assert.Contains(missing.Errors, e => e.Path == $"{Route}:Canary:CanarySubset");
    }
}
