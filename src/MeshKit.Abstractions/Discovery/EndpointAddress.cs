using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;

namespace MeshKit.Discovery;

/// <summary>Parses endpoint addresses written in settings: <c>host:port</c>, <c>ip:port</c>, <c>[v6]:port</c> or <c>https://host:port</c>.</summary>
internal static class EndpointAddress
{
    public static bool TryParse(string? text, [NotNullWhen(true)] out EndPoint? endPoint, [NotNullWhen(false)] out string? error)
    {
        endPoint = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "is empty; write host:port or https://host:port";
            return false;
        }

        string host;
        int port;
        if (text.Contains("://", StringComparison.Ordinal))
        {
            if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttps || uri.AbsolutePath is not ("/" or ""))
            {
                error = "is not an https://host:port address (mesh endpoints speak HTTPS; no path)";
                return false;
            }

            host = uri.IdnHost;
            port = uri.Port;
        }
        else
        {
            var colon = text.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out port))
            {
                error = "has no port; write host:port";
                return false;
            }

            host = text[..colon];
        }

        if (port is <= 0 or > 65535)
        {
            error = $"has port {port}; use 1 to 65535";
            return false;
        }

        var bare = host.Trim('[', ']');
        if (IPAddress.TryParse(bare, out var ip))
        {
            endPoint = new IPEndPoint(ip, port);
        }
        else if (Uri.CheckHostName(bare) == UriHostNameType.Dns)
        {
            endPoint = new DnsEndPoint(bare, port);
        }
        else
        {
            error = $"has host '{host}', which is neither an IP address nor a DNS name";
            return false;
        }

        error = null;
        return true;
    }
}
