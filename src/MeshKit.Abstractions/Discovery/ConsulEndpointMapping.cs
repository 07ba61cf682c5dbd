using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;

namespace MeshKit.Discovery;

/// <summary>
/// How a Consul service instance becomes a mesh endpoint: its address and port (instances MeshKit cannot call are left
/// out) and its <c>Meta</c> (<c>version</c>, <c>zone</c>, <c>weight</c>). The Consul endpoint provider and
/// <c>meshctl why --consul</c> both read instances with this.
/// </summary>
public static class ConsulEndpointMapping
{
    /// <summary>The largest weight MeshKit accepts, in its own units (100 is the default).</summary>
    public const int MaxWeight = 1_000_000;

    /// <summary>Gets the endpoint of an instance: an IP address (brackets allowed) or a DNS name, and a port 1–65535.</summary>
    /// <param name="address">The instance's effective address (its service address, else its node's).</param>
    /// <param name="port">Its port.</param>
    /// <param name="endPoint">The endpoint.</param>
    /// <returns>Whether the instance can be called.</returns>
    public static bool TryCreateEndPoint(string? address, int port, [NotNullWhen(true)] out EndPoint? endPoint)
    {
        endPoint = null;
        if (port is <= 0 or > 65535 || string.IsNullOrEmpty(address))
        {
            return false;
        }

        var bare = address.Trim('[', ']');
        if (IPAddress.TryParse(bare, out var ip))
        {
            endPoint = new IPEndPoint(ip, port);
        }
        else if (Uri.CheckHostName(bare) == UriHostNameType.Dns)
        {
            endPoint = new DnsEndPoint(bare, port);
        }

        return endPoint is not null;
    }

    /// <summary>
    /// Reads an instance's metadata. A <c>weight</c> in <c>Meta</c> (MeshKit's units) wins over Consul's relative
    /// weights, where one Consul unit is MeshKit's default of 100.
    /// </summary>
    /// <param name="meta">The instance's <c>Meta</c>.</param>
    /// <param name="consulPassingWeight">Its Consul <c>Weights.Passing</c>, when it has weights.</param>
    /// <param name="rejectedWeight">The <c>Meta</c> weight when it was not a whole number from 0 to <see cref="MaxWeight"/> and was ignored.</param>
    /// <returns>The metadata.</returns>
    public static MeshEndpointMetadata ReadMetadata(IReadOnlyDictionary<string, string> meta, int? consulPassingWeight, out string? rejectedWeight)
    {
        ArgumentNullException.ThrowIfNull(meta);
        rejectedWeight = null;
        var values = new Dictionary<string, string>(meta, StringComparer.Ordinal);
        var version = values.TryGetValue("version", out var v) && v.Length > 0 ? v : null;
        var zone = values.TryGetValue("zone", out var z) && z.Length > 0 ? z : null;
        var fromConsul = consulPassingWeight is { } passing
            ? (int)Math.Clamp((long)passing * MeshEndpointMetadata.DefaultWeight, 0, MaxWeight)
            : MeshEndpointMetadata.DefaultWeight;
        int weight;
        if (!values.TryGetValue("weight", out var text))
        {
            weight = fromConsul;
        }
        else if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out weight) || weight > MaxWeight)
        {
            weight = fromConsul;
            rejectedWeight = text;
        }

        return new MeshEndpointMetadata(version, zone, weight, values);
    }
}
