using System.Globalization;
using System.Net;
using MeshKit.Hosting;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace MeshKit.Server;

/// <summary>
/// Adds the mesh endpoint to Kestrel (<c>Mesh:Endpoint:Port</c>): HTTPS with a required mesh client certificate, HTTP/2
/// and HTTP/1.1. Because Kestrel ignores <c>urls</c> once any endpoint is bound in code, the app's own <c>urls</c>
/// (<c>--urls</c>, <c>ASPNETCORE_URLS</c>, <c>ASPNETCORE_HTTP_PORTS</c>) are bound here too, unchanged, as public endpoints.
/// Endpoints in the <c>Kestrel:Endpoints</c> section are Kestrel's own and stay as they are.
/// </summary>
internal sealed class MeshKestrelSetup(
    IOptions<MeshOptions> options,
    MeshServerTls tls,
    MeshEndpointInfo endpointInfo,
    MeshPublicUrls publicUrls,
    Telemetry.MeshMetrics metrics) : IConfigureOptions<KestrelServerOptions>
{
    public void Configure(KestrelServerOptions kestrel)
    {
        var endpoint = options.Value.Endpoint;
        if (endpoint.Port is not { } port)
        {
            return;
        }

        BindPublicUrls(kestrel);

        void ConfigureMesh(ListenOptions listen)
        {
            listen.Protocols = HttpProtocols.Http1AndHttp2;

            // Bounded before TLS: a flood of connections (or of handshakes that never finish) cannot take more than this.
            listen.Use(next => new MeshConnectionLimit(next, endpoint.MaxConnections, metrics).OnConnectionAsync);
            listen.UseHttps(tls.CreateHandshakeOptions(endpoint.HandshakeTimeout));
            endpointInfo.Set(listen);
        }

        switch (endpoint.Address)
        {
            case "*":
                kestrel.ListenAnyIP(port, ConfigureMesh);
                break;
            case "localhost":
                kestrel.Listen(IPAddress.Loopback, port, ConfigureMesh);
                break;
            default:
                kestrel.Listen(IPAddress.Parse(endpoint.Address), port, ConfigureMesh);
                break;
        }
    }

    private void BindPublicUrls(KestrelServerOptions kestrel)
    {
        if (!publicUrls.BoundByMesh)
        {
            // Kestrel binds its configured endpoints (Kestrel:Endpoints) itself and ignores urls in that case anyway.
            return;
        }

        if (publicUrls.Urls is { } urls)
        {
            foreach (var url in urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                BindUrl(kestrel, url);
            }

            return;
        }

        BindPorts(kestrel, publicUrls.HttpPorts, https: false);
        BindPorts(kestrel, publicUrls.HttpsPorts, https: true);
    }

    private static void BindPorts(KestrelServerOptions kestrel, string? ports, bool https)
    {
        if (string.IsNullOrWhiteSpace(ports))
        {
            return;
        }

        foreach (var part in ports.Split([';', ','], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var port))
            {
                kestrel.ListenAnyIP(port, listen =>
                {
                    if (https)
                    {
                        listen.UseHttps();
                    }
                });
            }
        }
    }

    private static void BindUrl(KestrelServerOptions kestrel, string url)
    {
        var normalized = url.Replace("://*", "://0.0.0.0", StringComparison.Ordinal).Replace("://+", "://0.0.0.0", StringComparison.Ordinal);
        if (!Uri.TryCreate(normalized, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new InvalidOperationException($"The urls entry '{url}' is not an http:// or https:// address.");
        }

        var https = uri.Scheme == Uri.UriSchemeHttps;
        void Configure(ListenOptions listen)
        {
            if (https)
            {
                listen.UseHttps();
            }
        }

        var host = uri.Host.Trim('[', ']');
        if (host == "localhost")
        {
            if (uri.Port == 0)
            {
                kestrel.Listen(IPAddress.Loopback, 0, Configure);
            }
            else
            {
                kestrel.ListenLocalhost(uri.Port, Configure);
            }
        }
        else if (IPAddress.TryParse(host, out var ip))
        {
            if (ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any))
            {
                kestrel.ListenAnyIP(uri.Port, Configure);
            }
            else
            {
                kestrel.Listen(ip, uri.Port, Configure);
            }
        }
        else
        {
            kestrel.ListenAnyIP(uri.Port, Configure);
        }
    }
}

/// <summary>Counts the mesh endpoint's open connections and closes new ones beyond the limit.</summary>
internal sealed class MeshConnectionLimit(Microsoft.AspNetCore.Connections.ConnectionDelegate next, int limit, Telemetry.MeshMetrics metrics)
{
    private int _open;

    public async Task OnConnectionAsync(Microsoft.AspNetCore.Connections.ConnectionContext connection)
    {
        if (Interlocked.Increment(ref _open) > limit)
        {
            Interlocked.Decrement(ref _open);
            metrics.RecordConnectionRejected();
            connection.Abort(new Microsoft.AspNetCore.Connections.ConnectionAbortedException($"The mesh endpoint holds its limit of {limit} connections (Mesh:Endpoint:MaxConnections)."));
            return;
        }

        try
        {
            await next(connection).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _open);
        }
    }
}
