using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;

namespace MeshKit.Server;

/// <summary>
/// The app's own addresses (<c>urls</c>, <c>HTTP_PORTS</c>, <c>HTTPS_PORTS</c>) as they were when <c>AddMesh</c> ran.
/// With a mesh endpoint, MeshKit binds them in code; it takes them out of configuration so Kestrel does not also see them
/// and log "Overriding address(es)" at every start.
/// </summary>
internal sealed class MeshPublicUrls(string? urls, string? httpPorts, string? httpsPorts)
{
    private static readonly string[] Keys = [WebHostDefaults.ServerUrlsKey, WebHostDefaults.HttpPortsKey, WebHostDefaults.HttpsPortsKey];

    public string? Urls { get; } = urls;

    public string? HttpPorts { get; } = httpPorts;

    public string? HttpsPorts { get; } = httpsPorts;

    public static MeshPublicUrls Take(IConfiguration configuration)
    {
        var taken = new MeshPublicUrls(
            configuration[WebHostDefaults.ServerUrlsKey],
            configuration[WebHostDefaults.HttpPortsKey],
            configuration[WebHostDefaults.HttpsPortsKey]);

        // Only when MeshKit will bind them: a mesh endpoint from configuration, and no Kestrel:Endpoints (Kestrel's own).
        if (configuration["Mesh:Endpoint:Port"] is { Length: > 0 } && !configuration.GetSection("Kestrel:Endpoints").GetChildren().Any())
        {
            foreach (var key in Keys)
            {
                if (!string.IsNullOrEmpty(configuration[key]))
                {
                    configuration[key] = string.Empty;
                }
            }
        }

        return taken;
    }
}
