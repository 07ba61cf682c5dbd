using MeshKit.Discovery;
using MeshKit.Testing;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;
using Microsoft.Extensions.ServiceDiscovery;

namespace MeshKit.Tests.Discovery;

/// <summary>The static default, <c>Mesh:Discovery:Static</c>: endpoints with metadata, and bad entries named by their key.</summary>
[Trait("Area", "Discovery")]
public sealed class StaticDiscoveryTests
{
    [Fact]
    public async Task Static_endpoints_carry_their_metadata_and_a_bad_entry_is_left_out_with_a_warning_naming_its_key()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Mesh:Discovery:Static:orders:0:Address"] = "127.0.0.1:7101",
            ["Mesh:Discovery:Static:orders:0:Version"] = "v2",
            ["Mesh:Discovery:Static:orders:0:Zone"] = "zone-a",
            ["Mesh:Discovery:Static:orders:0:Weight"] = "50",
            ["Mesh:Discovery:Static:orders:0:Metadata:tier"] = "gold",
            ["Mesh:Discovery:Static:orders:1:Address"] = "orders",
        }).Build();
        var logs = new TestLogSink();
        using var loggerFactory = LoggerFactory.Create(logging => logging.AddProvider(logs));
        var factory = new StaticEndpointProviderFactory(configuration, new MeshDestinationNames("default", [], configuration), loggerFactory.CreateLogger<StaticEndpointProviderFactory>());

        Assert.True(ServiceEndpointQuery.TryParse("https://orders", out var query));
        Assert.True(factory.TryCreateProvider(query!, out var provider));
        var builder = new Builder();
        await provider!.PopulateAsync(builder, TestContext.Current.CancellationToken);

        var endpoint = Assert.Single(builder.Endpoints);
        Assert.Equal("127.0.0.1:7101", endpoint.EndPoint.ToString());
        var metadata = endpoint.Features.Get<IMeshEndpointMetadataFeature>()!.Metadata;
        Assert.Equal(("v2", "zone-a", 50, "gold"), (metadata.Version, metadata.Zone, metadata.Weight, metadata.Get("tier")));
        Assert.Contains(logs.Entries, e => e.EventId.Id == 3120 && e.Message.Contains("Mesh:Discovery:Static:orders:1:Address 'orders' has no port", StringComparison.Ordinal));
        Assert.Single(builder.ChangeTokens);
    }

    private sealed class Builder : IServiceEndpointBuilder
    {
        public IList<ServiceEndpoint> Endpoints { get; } = new List<ServiceEndpoint>();

        public IFeatureCollection Features { get; } = new FeatureCollection();

        public List<IChangeToken> ChangeTokens { get; } = [];

        public void AddChangeToken(IChangeToken changeToken) => ChangeTokens.Add(changeToken);
    }
}
