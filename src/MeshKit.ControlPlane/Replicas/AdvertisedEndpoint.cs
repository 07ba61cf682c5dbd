using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace MeshKit.ControlPlane.Replicas;

/// <summary>
/// Where workloads reach this replica: the server's first HTTPS address, with its host replaced by
/// <c>ControlPlane:AdvertiseAddress</c> when set, or by the machine's host name when the server listens on every address.
/// One rule for what the replica registers in Consul and what it writes as the leader's address.
/// </summary>
internal readonly record struct AdvertisedEndpoint(string BoundHost, int Port, bool AnyAddress)
{
    /// <summary>Reads the server's first HTTPS address (once the server has bound it).</summary>
    public static bool TryFrom(IServer server, out AdvertisedEndpoint endpoint)
    {
        foreach (var address in server.Features.Get<IServerAddressesFeature>()?.Addresses ?? [])
        {
            // Kestrel writes "any address" as 0.0.0.0, [::], '*' or '+'.
            var normalized = address.Replace("://*", "://0.0.0.0", StringComparison.Ordinal).Replace("://+", "://0.0.0.0", StringComparison.Ordinal);
            if (Uri.TryCreate(normalized, UriKind.Absolute, out var uri) && uri.Scheme == Uri.UriSchemeHttps)
            {
                var host = uri.Host.Trim('[', ']');
                endpoint = new AdvertisedEndpoint(host, uri.Port, host is "0.0.0.0" or "::");
                return true;
            }
        }

        endpoint = default;
        return false;
    }

    /// <summary>The host workloads use: the advertised address, else the host name when bound to every address, else the bound host.</summary>
    public string Host(ControlPlaneOptions settings) =>
        !string.IsNullOrWhiteSpace(settings.AdvertiseAddress) ? settings.AdvertiseAddress.Trim('[', ']')
        : AnyAddress ? Dns.GetHostName()
        : BoundHost;

    /// <summary>The replica's base address, <c>https://host:port/</c>.</summary>
    public Uri Url(ControlPlaneOptions settings)
    {
        var host = Host(settings);
        var urlHost = IPAddress.TryParse(host, out var ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? "[" + host + "]" : host;
        return new Uri($"https://{urlHost}:{Port.ToString(CultureInfo.InvariantCulture)}/");
    }
}
