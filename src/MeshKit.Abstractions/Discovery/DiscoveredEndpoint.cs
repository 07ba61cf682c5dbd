using System.Net;
using Microsoft.Extensions.Configuration;

namespace MeshKit.Discovery;

/// <summary>An endpoint of a destination as MeshKit's discovery reports it: its address, its state key and its metadata.</summary>
/// <param name="Key">The key MeshKit keeps per-endpoint state under (<c>127.0.0.1:5001</c>, <c>[::1]:5001</c> or <c>host:5001</c>); outlier ejections are reported with it.</param>
/// <param name="EndPoint">The address.</param>
/// <param name="Metadata">Version, zone, weight and every other metadata pair.</param>
public sealed record DiscoveredEndpoint(string Key, EndPoint EndPoint, MeshEndpointMetadata Metadata)
{
    /// <summary>Gets the key MeshKit keeps per-endpoint state under for an address.</summary>
    /// <param name="endPoint">The address.</param>
    /// <returns><c>ip:port</c> (IPv6 in brackets), or <c>host:port</c>.</returns>
    public static string KeyOf(EndPoint endPoint)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        return endPoint switch
        {
            IPEndPoint ip => ip.ToString(),
            DnsEndPoint dns => $"{dns.Host}:{dns.Port}",
            _ => endPoint.ToString() ?? string.Empty,
        };
    }
}
