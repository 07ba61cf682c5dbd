using MeshKit.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshKit.Transport;

/// <summary>
/// What mesh clients do with a request that is not a mesh call (<c>Mesh:Client:NonMeshHosts</c>): send it through the plain
/// handler, untouched (<see cref="NonMeshHostMode.PassThrough"/>, the default), or fail it with
/// <c>not_a_mesh_destination</c> (<see cref="NonMeshHostMode.Refuse"/>). Either way it never enters mesh discovery. It also
/// keeps the other direction shut: a request for a mesh name that reaches the transport without its mesh call is failed,
/// never sent out through the plain handler.
/// </summary>
internal sealed partial class NonMeshHostGate(MeshDestination.Cache destinations, IOptions<MeshOptions> options, ILogger<NonMeshHostGate> logger)
{
    /// <summary>The setting that chooses between passing through and refusing.</summary>
    public const string Setting = MeshOptions.SectionName + ":Client:NonMeshHosts";

    /// <summary>The reason of a refused non-mesh request.</summary>
    public const string RefusedReason = "not_a_mesh_destination";

    /// <summary>The reason of a mesh call that reached the transport without what it needs to be sent over mTLS.</summary>
    public const string IncompleteReason = "mesh_call_incomplete";

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
            RefusedReason,
            $"This mesh client refuses the request to {target}: it is not a mesh destination ({why}). {Setting} is Refuse, so mesh clients only "
            + $"make mesh calls; call this host through an ordinary HttpClient, or set {Setting} to PassThrough.");
    }

    /// <summary>
    /// Checks a request that reaches the transport without a mesh call: <see langword="null"/> to send it through the plain
    /// handler, or the exception to fail it with.
    /// </summary>
    /// <param name="request">The request.</param>
    /// <returns>The exception, or <see langword="null"/>.</returns>
    public MeshCallException? CheckPlainRequest(HttpRequestMessage request)
    {
        if (destinations.Get(request.RequestUri) is { } destination)
        {
            // MeshCallHandler starts a mesh call for every mesh name, so this request was made by a handler after it (a new
            // HttpRequestMessage without the call's state). Never let a mesh name out through the plain handler.
            LogIncomplete(logger, destination.Host);
            return new MeshCallException(
                IncompleteReason,
                $"A request to mesh destination '{destination}' reached MeshKit's transport without its mesh call (did a handler added after AddMesh() "
                + "send a new HttpRequestMessage?); it was not sent, since it would have left the mesh without mTLS.");
        }

        return Refuses ? Refuse(request.RequestUri) : null;
    }

    [LoggerMessage(EventId = 4002, Level = LogLevel.Warning, Message = "A mesh client refused the request to {Target}: it is not a mesh destination ({Why}); Mesh:Client:NonMeshHosts is Refuse.")]
    private static partial void LogRefused(ILogger logger, string target, string why);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Error, Message = "A request to mesh destination {Destination} reached the transport without its mesh call and was not sent.")]
    private static partial void LogIncomplete(ILogger logger, string destination);
}
