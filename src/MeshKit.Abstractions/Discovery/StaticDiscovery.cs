using System.Net;
using Microsoft.Extensions.Configuration;

namespace MeshKit.Discovery;

/// <summary>
/// Reads MeshKit's static discovery section, <c>Mesh:Discovery:Static:&lt;destination&gt;</c>, with the same reader the
/// runtime's static endpoint provider uses. For tools such as <c>meshctl why</c>.
/// </summary>
public static class StaticDiscovery
{
    /// <summary>The configuration path of the static discovery section.</summary>
    public const string SectionPath = "Mesh:Discovery:Static";

    /// <summary>Reads the static endpoints of one destination.</summary>
    /// <param name="configuration">The app's configuration (its <c>Mesh:Discovery:Static</c> section is read).</param>
    /// <param name="destination">The destination as mesh clients call it (<c>orders</c>).</param>
    /// <param name="errors">Receives one message, naming the full key, per entry that is left out; optional.</param>
    /// <returns>The endpoints the runtime would use, in order.</returns>
    public static IReadOnlyList<DiscoveredEndpoint> Read(IConfiguration configuration, string destination, ICollection<string>? errors = null)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentException.ThrowIfNullOrEmpty(destination);
        var list = new List<DiscoveredEndpoint>();
        foreach (var child in configuration.GetSection(SectionPath).GetSection(destination).GetChildren())
        {
            var options = new StaticEndpointOptions();
            child.Bind(options);
            var key = $"{SectionPath}:{destination}:{child.Key}";
            if (!EndpointAddress.TryParse(options.Address, out var endPoint, out var error))
            {
                errors?.Add($"{key}:Address '{options.Address}' {error}.");
                continue;
            }

            if (options.Weight is < 0 or > 1_000_000)
            {
                errors?.Add($"{key}:Weight is {options.Weight}; use 0 to 1000000 (default {MeshEndpointMetadata.DefaultWeight}).");
                continue;
            }

            var values = new Dictionary<string, string>(options.Metadata, StringComparer.Ordinal);
            if (options.Version is not null)
            {
                values["version"] = options.Version;
            }

            if (options.Zone is not null)
            {
                values["zone"] = options.Zone;
            }

            var metadata = new MeshEndpointMetadata(options.Version, options.Zone, options.Weight ?? MeshEndpointMetadata.DefaultWeight, values);
            list.Add(new DiscoveredEndpoint(DiscoveredEndpoint.KeyOf(endPoint), endPoint, metadata));
        }

        return list;
    }
}
