using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.ServiceDiscovery;

namespace MeshKit.Discovery;

/// <summary>
/// Discovery from MeshKit's own section <c>Mesh:Discovery:Static:&lt;service&gt;</c>: a list of endpoints with version, zone
/// and weight. The library's configuration provider cannot carry that metadata, hence a section of our own. Changes to the
/// configuration (a reloaded appsettings file) are pushed through its reload token.
/// </summary>
internal sealed partial class StaticEndpointProviderFactory(IConfiguration configuration, MeshDestinationNames names, ILogger<StaticEndpointProviderFactory> logger) : IMeshServiceEndpointProviderFactory
{
    public const string SectionPath = StaticDiscovery.SectionPath;

    public bool TryCreateProvider(ServiceEndpointQuery query, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IServiceEndpointProvider? provider)
    {
        // Only mesh names: a plain service-discovery client asking for example.com or localhost gets nothing from here.
        if (!names.TryParse(query.ServiceName, out _, out _))
        {
            provider = null;
            return false;
        }

        provider = new StaticEndpointProvider(configuration, query.ServiceName, logger);
        return true;
    }

    /// <summary>Reads one service's endpoints as the discovery library's endpoints, metadata as a feature.</summary>
    internal static List<ServiceEndpoint> Read(IConfiguration configuration, string service, List<string>? errors)
    {
        var list = new List<ServiceEndpoint>();
        foreach (var endpoint in StaticDiscovery.Read(configuration, service, errors))
        {
            var features = new FeatureCollection();
            features.Set<IMeshEndpointMetadataFeature>(endpoint.Metadata);
            list.Add(ServiceEndpoint.Create(endpoint.EndPoint, features));
        }

        return list;
    }

    [LoggerMessage(EventId = 3120, Level = LogLevel.Warning, Message = "A static endpoint is left out: {Error}")]
    private static partial void LogBadEntry(ILogger logger, string error);

    private sealed class StaticEndpointProvider(IConfiguration configuration, string service, ILogger logger) : IServiceEndpointProvider
    {
        public ValueTask PopulateAsync(IServiceEndpointBuilder endpoints, CancellationToken cancellationToken)
        {
            var errors = new List<string>();
            foreach (var endpoint in Read(configuration, service, errors))
            {
                endpoints.Endpoints.Add(endpoint);
            }

            // Read once per configuration change, so each bad entry is logged once per reload.
            foreach (var error in errors)
            {
                LogBadEntry(logger, error);
            }

            endpoints.AddChangeToken(configuration.GetReloadToken());
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;

        public override string ToString() => $"MeshKit static ({SectionPath}:{service})";
    }
}
