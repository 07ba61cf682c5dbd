using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using MeshKit.Hosting;

namespace MeshKit.Transport;

/// <summary>
/// Mesh calls that switch protocols: a WebSocket that <c>ClientWebSocket.ConnectAsync(wss://service/..., meshClient)</c>
/// opens through a mesh client. ClientWebSocket sends either an HTTP/1.1 upgrade (a GET with <c>Upgrade: websocket</c>,
/// answered 101) or an HTTP/2 extended CONNECT (<c>:protocol = websocket</c>, RFC 8441, answered 200), as its
/// <c>Options.HttpVersion</c> and <c>HttpVersionPolicy</c> say, with <see cref="HttpVersionPolicy.RequestVersionExact"/>:
/// it does its own fallback. The call path keeps that version (the transport's <c>Mesh:Transport:HttpVersion</c> would
/// turn the upgrade into a plain HTTP/2 GET), makes one attempt (never retried) and never mirrors it.
/// </summary>
internal static class ProtocolUpgrade
{
    /// <summary>The most of a refusal's problem+json body read to explain it.</summary>
    private const int MaxProblemBytes = 16 * 1024;

    /// <summary>The type prefix of MeshKit's own problem answers (<c>MeshProblem</c> on the server).</summary>
    private const string MeshProblemTypePrefix = "urn:meshkit:problem:";

    /// <summary>Whether the request switches protocols: an HTTP/2 extended CONNECT, or an HTTP/1.1 <c>Upgrade</c>.</summary>
    /// <param name="request">The request.</param>
    /// <returns>Whether it is an upgrade.</returns>
    public static bool Is(HttpRequestMessage request)
    {
        // Both checks read what is there, without parsing or allocating.
        var headers = request.Headers;
        return headers.Protocol is not null || headers.NonValidated.Contains("Upgrade");
    }

    /// <summary>
    /// Sets the HTTP version of a mesh call: the transport's for an ordinary call; for an upgrade, the one its client chose.
    /// An HTTP/2 WebSocket through a transport held to HTTP/1.1 fails before anything is sent, as a server without extended
    /// CONNECT would make it fail, so that ClientWebSocket falls back to the HTTP/1.1 upgrade when its options allow.
    /// </summary>
    /// <param name="request">The request.</param>
    /// <param name="transportVersion">The transport's version (<c>Mesh:Transport:HttpVersion</c>).</param>
    /// <param name="destination">The destination, for the error.</param>
    /// <returns>Whether the request is an upgrade.</returns>
    public static bool SetVersion(HttpRequestMessage request, Version transportVersion, string destination)
    {
        if (!Is(request))
        {
            request.Version = transportVersion;
            request.VersionPolicy = HttpVersionPolicy.RequestVersionOrLower;
            return false;
        }

        if (request.Version.Major >= 2 && transportVersion.Major < 2)
        {
            throw new HttpRequestException(
                HttpRequestError.ExtendedConnectNotSupported,
                $"The WebSocket to '{destination}' asks for HTTP/2 (extended CONNECT), and {MeshOptions.SectionName}:Transport:HttpVersion is "
                + $"{transportVersion}: allow HTTP/1.1 (ClientWebSocketOptions.HttpVersion = 1.1, or HttpVersionPolicy = RequestVersionOrLower), "
                + "or let the mesh transport use HTTP/2.");
        }

        return true;
    }

    /// <summary>
    /// Waits for an upgrade's answer and turns a refusal by MeshKit on the server (authorization, rate limit, revoked or
    /// expired identity: problem+json with a MeshKit type) into a <see cref="MeshCallException"/> with the server's reason
    /// and detail. ClientWebSocket never shows the body of a refused upgrade, only its status code; a refusal by the app
    /// itself stays an HTTP answer.
    /// </summary>
    /// <param name="sending">The call under way.</param>
    /// <param name="request">The upgrade request.</param>
    /// <param name="destination">The destination.</param>
    /// <param name="cancellationToken">The caller's token.</param>
    /// <returns>The answer, when it is not a refusal by MeshKit.</returns>
    public static async Task<HttpResponseMessage> ExplainRefusalAsync(Task<HttpResponseMessage> sending, HttpRequestMessage request, string destination, CancellationToken cancellationToken)
    {
        var response = await sending.ConfigureAwait(false);
        if (response.StatusCode is HttpStatusCode.SwitchingProtocols or HttpStatusCode.OK
            || response.Content.Headers.ContentType is not MediaTypeHeaderValue { MediaType: "application/problem+json" })
        {
            return response;
        }

        string? reason = null;
        string? detail = null;
        try
        {
            var body = await ReadBoundedAsync(response.Content, cancellationToken).ConfigureAwait(false);
            using var problem = JsonDocument.Parse(body);
            var root = problem.RootElement;
            if (root.ValueKind == JsonValueKind.Object
                && root.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String
                && type.GetString()!.StartsWith(MeshProblemTypePrefix, StringComparison.Ordinal)
                && root.TryGetProperty("reason", out var reasonValue) && reasonValue.ValueKind == JsonValueKind.String)
            {
                reason = reasonValue.GetString();
                detail = root.TryGetProperty("detail", out var detailValue) && detailValue.ValueKind == JsonValueKind.String ? detailValue.GetString() : null;
            }
        }
        catch (JsonException)
        {
            // Not MeshKit's problem body: the answer goes to the caller as it is.
        }

        if (reason is null)
        {
            return response;
        }

        response.Dispose();
        var target = request.RequestUri?.GetLeftPart(UriPartial.Path) ?? destination;
        throw new MeshCallException(
            reason,
            $"The mesh endpoint of '{destination}' refused the WebSocket upgrade to {target}: {(int)response.StatusCode} {reason}: {detail}");
    }

    private static async Task<byte[]> ReadBoundedAsync(HttpContent content, CancellationToken cancellationToken)
    {
        var stream = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            var buffer = new byte[MaxProblemBytes];
            var length = 0;
            int read;
            while (length < buffer.Length && (read = await stream.ReadAsync(buffer.AsMemory(length), cancellationToken).ConfigureAwait(false)) > 0)
            {
                length += read;
            }

            return buffer[..length];
        }
    }
}
