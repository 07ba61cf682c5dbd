using MeshKit.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshKit.Transport;

/// <summary>
/// What mesh clients do with a request that is not a mesh call (<c>Mesh:Client:NonMeshHosts</c>): send it through the plain
/// handler, untouched (<see cref="NonMeshHostMode.PassThrough"/>, the default), or fail it with
/// <c>not_a_mesh_destination</c> (<see cref="NonMeshHostMode.Refuse"/>). Either way it never enters mesh discovery. The other
/// direction is shut by construction: the mesh client's one entry (its primary handler) decides by the request's host, so a
/// request for a mesh name always runs through the mesh, whatever handlers before it did to the request.
/// </summary>
internal sealed partial class NonMeshHostGate(MeshDestination.Cache destinations, IOptions<MeshOptions> options, ILogger<NonMeshHostGate> logger)
{
    /// <summary>The setting that chooses between passing through and refusing.</summary>
    public const string Setting = MeshOptions.SectionName + ":Client:NonMeshHosts";

    /// <summary>The reason of a refused non-mesh request.</summary>
    public const string RefusedReason = MeshCallReasons.NotAMeshDestination;

    /// <summary>Gets whether non-mesh requests are refused rather than passed through.</summary>
    public bool Refuses { get; } = options.Value.Client.NonMeshHosts == NonMeshHostMode.Refuse;

    /// <summary>Builds (and logs) the refusal of a request that is not a mesh call.</summary>
    /// <param name="uri">The request URI.</param>
    /// <returns>The exception to fail the request with.</returns>
    public MeshCallException Refuse(Uri? uri)
    {
        var target = uri is { IsAbsoluteUri: true } ? uri.GetLeftPart(UriPartial.Authority) : uri?.OriginalString ?? "(no URI)";
        var why = destinations.Explain(uri) ?? "it is not";
        LogRefused(logger, target, why);
        return new MeshCallException(
            MeshCallReasons.NotAMeshDestination,
            $"This mesh client refuses the request to {target}: it is not a mesh destination ({why}). {Setting} is Refuse, so mesh clients only "
            + $"make mesh calls; call this host through an ordinary HttpClient, or set {Setting} to PassThrough.");
    }

    [LoggerMessage(EventId = 4002, Level = LogLevel.Warning, Message = "A mesh client refused the request to {Target}: it is not a mesh destination ({Why}); Mesh:Client:NonMeshHosts is Refuse.")]
    private static partial void LogRefused(ILogger logger, string target, string why);
}
