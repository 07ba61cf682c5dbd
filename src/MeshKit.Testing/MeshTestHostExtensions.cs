using System.Globalization;
using System.Net;
using MeshKit.Server;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Testing;

/// <summary>Helpers to wire the apps of a test together: where a started app's mesh endpoint is, and static discovery to it.</summary>
public static class MeshTestHostExtensions
{
    /// <summary>
    /// Gets the address a started host's mesh endpoint listens on (the real port when <c>Mesh:Endpoint:Port</c> is 0), as
    /// other apps of the test reach it: an endpoint bound to every address is given as the loopback address.
    /// </summary>
    /// <param name="services">The started host's services (<c>factory.Services</c>, <c>app.Services</c>).</param>
    /// <returns>The address and port.</returns>
    /// <exception cref="InvalidOperationException">The host has no mesh endpoint (<c>Mesh:Endpoint:Port</c> is not set) or has not started.</exception>
    public static IPEndPoint GetMeshEndpoint(this IServiceProvider services)
    {
        ArgumentNullException.ThrowIfNull(services);
        var bound = services.GetService<MeshEndpointInfo>()?.BoundEndPoint
            ?? throw new InvalidOperationException("This host has no mesh endpoint, or it has not started: set Mesh:Endpoint:Port (0 picks a free port) and start the host first.");
        if (bound.Address.Equals(IPAddress.Any))
        {
            return new IPEndPoint(IPAddress.Loopback, bound.Port);
        }

        return bound.Address.Equals(IPAddress.IPv6Any) ? new IPEndPoint(IPAddress.IPv6Loopback, bound.Port) : bound;
    }

    /// <summary>
    /// Gets the base address of a started host's first public endpoint (plain HTTP or HTTPS without a client certificate,
    /// not the mesh endpoint), for a test's "browser" client: <c>factory.CreateClient(new() { BaseAddress = ... })</c>. An
    /// endpoint bound to every address is given as the loopback address.
    /// </summary>
    /// <param name="services">The started host's services.</param>
    /// <returns>The base address, ending in <c>/</c>.</returns>
    /// <exception cref="InvalidOperationException">The host has no public endpoint, or has not started.</exception>
    public static Uri GetPublicAddress(this IServiceProvider services)
    {
        ArgumentNullException.ThrowIfNull(services);
        var mesh = services.GetService<MeshEndpointInfo>()?.BoundEndPoint?.Port;
        var addresses = services.GetService<IServer>()?.Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        foreach (var address in addresses)
        {
            var uri = new Uri(address);
            if (uri.Port != mesh)
            {
                var host = uri.Host is "0.0.0.0" or "[::]" or "+" or "*" ? "127.0.0.1" : uri.Host;
                return new Uri(string.Create(CultureInfo.InvariantCulture, $"{uri.Scheme}://{host}:{uri.Port}/"));
            }
        }

        throw new InvalidOperationException("This host has no public endpoint, or it has not started: give it one (urls, for example http://127.0.0.1:0) and start it first.");
    }

    /// <summary>
    /// Adds static discovery for the mesh destination <paramref name="destination"/>: the settings
    /// <c>Mesh:Discovery:Static:&lt;destination&gt;:&lt;i&gt;:Address</c>, one per endpoint, in memory. Added last, they win
    /// over the app's own files (use it in <c>ConfigureAppConfiguration</c> of a <c>WebApplicationFactory</c>).
    /// </summary>
    /// <param name="configuration">The app's configuration.</param>
    /// <param name="destination">The mesh service name the app calls (<c>https://orders/...</c>).</param>
    /// <param name="endpoints">The mesh endpoints of that service's hosts, from <see cref="GetMeshEndpoint"/>.</param>
    /// <returns>The configuration builder.</returns>
    public static IConfigurationBuilder AddMeshDestination(this IConfigurationBuilder configuration, string destination, params IPEndPoint[] endpoints)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentException.ThrowIfNullOrEmpty(destination);
        ArgumentNullException.ThrowIfNull(endpoints);
        if (endpoints.Length == 0)
        {
            throw new ArgumentException("Give at least one endpoint.", nameof(endpoints));
        }

        var settings = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < endpoints.Length; i++)
        {
            settings[string.Create(CultureInfo.InvariantCulture, $"{MeshOptions.SectionName}:Discovery:Static:{destination}:{i}:Address")] = endpoints[i].ToString();
        }

        return configuration.AddInMemoryCollection(settings);
    }
}
