using MeshKit.Policy;
using Microsoft.Extensions.Configuration;

namespace MeshKit.Tests.Policy;

/// <summary>What the data plane builds from the policy reader's output; the reader's own tests live in MeshKit.Abstractions.Tests.</summary>
[Trait("Area", "Traffic")]
public sealed class PolicyReaderTests
{
    private static PolicyReadResult Read(Dictionary<string, string?> settings) =>
        PolicyReader.Read(new ConfigurationBuilder().AddInMemoryCollection(settings).Build().GetSection("Mesh"));

    [Fact]
    public void Resilience_settings_compare_by_value_so_an_unchanged_destination_keeps_its_pipeline_across_reloads()
    {
        Dictionary<string, string?> settings = new()
        {
            ["Mesh:Policy:Destinations:orders:Retry:MaxRetries"] = "3",
            ["Mesh:Policy:Destinations:orders:Concurrency:MaxRequests"] = "50",
            ["Mesh:Policy:Destinations:orders:Routes:0:Split:v1"] = "100",
        };
        var first = Read(settings).Snapshot!.For("orders");
        settings["Mesh:Policy:Destinations:orders:Routes:0:Split:v1"] = "50";
        settings["Mesh:Policy:Destinations:orders:Routes:0:Split:v2"] = "50";
        var reloaded = Read(settings).Snapshot!.For("orders");
        settings["Mesh:Policy:Destinations:orders:Retry:MaxRetries"] = "1";
        var retryChanged = Read(settings).Snapshot!.For("orders");

        Assert.NotSame(first.Retry, reloaded.Retry);
        Assert.Equal(MeshKit.Resilience.ResilienceSettings.Of(first), MeshKit.Resilience.ResilienceSettings.Of(reloaded));
        Assert.NotEqual(MeshKit.Resilience.ResilienceSettings.Of(first), MeshKit.Resilience.ResilienceSettings.Of(retryChanged));
    }
}
