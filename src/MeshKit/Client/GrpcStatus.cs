namespace MeshKit.Client;

/// <summary>
/// What MeshKit reads of a gRPC response: the <c>grpc-status</c> of a Trailers-Only response (HTTP 200, content type
/// <c>application/grpc</c>, the status in the headers: a call that failed before any response message). A status sent in
/// trailers, after messages, comes when the body has been read, after MeshKit has handed the response on: not read.
/// Reads the raw header values only, so a call that is not gRPC costs one content-type lookup and allocates nothing.
/// </summary>
internal static class GrpcStatus
{
    /// <summary>No gRPC status: not a gRPC response, or its status comes in trailers.</summary>
    public const int None = -1;

    /// <summary>UNAVAILABLE: the server cannot take the call now; an endpoint failure, like a 5xx.</summary>
    public const int Unavailable = 14;

    private const string GrpcContentType = "application/grpc";

    /// <summary>
    /// Gets the status code of a Trailers-Only gRPC response, or <see cref="None"/>.
    /// </summary>
    public static int Read(HttpResponseMessage response)
    {
        if (response.StatusCode != System.Net.HttpStatusCode.OK || !IsGrpc(response.Content))
        {
            return None;
        }

        if (!response.Headers.NonValidated.TryGetValues("grpc-status", out var values))
        {
            return None;
        }

        foreach (var value in values)
        {
            return int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var code) ? code : None;
        }

        return None;
    }

    /// <summary>Gets whether a status counts against the endpoint (outlier detection, the balancer's failure penalty).</summary>
    public static bool IsEndpointFailure(int code) => code == Unavailable;

    // application/grpc, application/grpc+proto, application/grpc; charset=...
    private static bool IsGrpc(HttpContent content)
    {
        if (!content.Headers.NonValidated.TryGetValues("Content-Type", out var values))
        {
            return false;
        }

        foreach (var value in values)
        {
            return value.StartsWith(GrpcContentType, StringComparison.OrdinalIgnoreCase)
                && (value.Length == GrpcContentType.Length || value[GrpcContentType.Length] is '+' or ';');
        }

        return false;
    }
}
