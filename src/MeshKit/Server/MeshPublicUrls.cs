using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace MeshKit.Server;

/// <summary>
/// The app's own addresses (<c>urls</c>, <c>HTTP_PORTS</c>, <c>HTTPS_PORTS</c>), read from its configuration and never
/// changed there. With a mesh endpoint, Kestrel would ignore them (it binds only the endpoints set in code once there is
/// one), so <see cref="MeshKestrelSetup"/> binds them in code, unchanged, as public endpoints.
/// </summary>
internal sealed class MeshPublicUrls(IConfiguration configuration, IOptions<MeshOptions> options)
{
    /// <summary>
    /// Gets whether MeshKit binds the app's addresses: a mesh endpoint, and no <c>Kestrel:Endpoints</c> (Kestrel binds
    /// those itself and ignores <c>urls</c> then anyway).
    /// </summary>
    public bool BoundByMesh => options.Value.Endpoint.Port is not null && !configuration.GetSection("Kestrel:Endpoints").GetChildren().Any();

    /// <summary>Gets the <c>urls</c> setting, or <see langword="null"/> when it is empty.</summary>
    public string? Urls => NonEmpty(configuration[WebHostDefaults.ServerUrlsKey]);

    /// <summary>Gets the <c>http_ports</c> setting, or <see langword="null"/> when it is empty.</summary>
    public string? HttpPorts => NonEmpty(configuration[WebHostDefaults.HttpPortsKey]);

    /// <summary>Gets the <c>https_ports</c> setting, or <see langword="null"/> when it is empty.</summary>
    public string? HttpsPorts => NonEmpty(configuration[WebHostDefaults.HttpsPortsKey]);

    /// <summary>
    /// The addresses ASP.NET Core's web host derives from the same settings and hands the server: the <c>urls</c> entries,
    /// or else <c>http://*:port</c> and <c>https://*:port</c> for the ports.
    /// </summary>
    /// <returns>The addresses, trimmed.</returns>
    public HashSet<string> HostingAddresses()
    {
        HashSet<string> addresses = new(StringComparer.OrdinalIgnoreCase);
        if (Urls is { } urls)
        {
            addresses.UnionWith(urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            return addresses;
        }

        foreach (var (ports, scheme) in (ReadOnlySpan<(string?, string)>)[(HttpPorts, "http"), (HttpsPorts, "https")])
        {
            foreach (var port in ports?.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? [])
            {
                addresses.Add($"{scheme}://*:{port}");
            }
        }

        return addresses;
    }

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;
}

/// <summary>
/// Takes the app's addresses that MeshKit binds in code out of the server's address list for this start (the host copied
/// them there from configuration), so Kestrel does not log "Overriding address(es)" at every start. The configuration
/// keeps them; addresses MeshKit does not bind (added with <c>app.Urls</c>) stay in the list, and Kestrel's warning about
/// them is right.
/// </summary>
internal sealed class MeshPublicUrlsStartupFilter(MeshPublicUrls publicUrls) : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        if (publicUrls.BoundByMesh && app.ServerFeatures.Get<IServerAddressesFeature>()?.Addresses is { IsReadOnly: false } addresses)
        {
            var bound = publicUrls.HostingAddresses();
            foreach (var address in addresses.ToArray())
            {
                if (bound.Contains(address.Trim()))
                {
                    addresses.Remove(address);
                }
            }
        }

        next(app);
    };
}
