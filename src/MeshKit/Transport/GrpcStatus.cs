namespace MeshKit.Transport;

/// <summary>
/// gRPC over HTTP/2 as MeshKit reads and writes it: the <c>grpc-status</c> of a Trailers-Only response (HTTP 200, content
/// type <c>application/grpc</c>, the status in the headers: a call that failed before any response message) or of the
/// trailers (<see cref="ReadCode"/>, for <c>Client/GrpcCallEnd.cs</c>), status codes, and <c>grpc-message</c>'s encoding.
/// Reads the raw header values only, so a call that is not gRPC costs one content-type lookup and allocates nothing.
/// </summary>
internal static class GrpcStatus
{
    /// <summary>No gRPC status: not a gRPC response, or its status comes in trailers.</summary>
    public const int None = -1;

    /// <summary>UNAVAILABLE: the server cannot take the call now; an endpoint failure, like a 5xx.</summary>
    public const int Unavailable = 14;

    /// <summary>DEADLINE_EXCEEDED: the call's deadline passed.</summary>
    public const int DeadlineExceeded = 4;

    /// <summary>PERMISSION_DENIED: the caller is known and may not do this.</summary>
    public const int PermissionDenied = 7;

    /// <summary>RESOURCE_EXHAUSTED: over a limit (a rate limit).</summary>
    public const int ResourceExhausted = 8;

    /// <summary>UNAUTHENTICATED: the caller has no identity the server accepts.</summary>
    public const int Unauthenticated = 16;

    /// <summary>UNKNOWN: the server failed without saying how (an unhandled exception in a service method).</summary>
    public const int Unknown = 2;

    /// <summary>INTERNAL: the server broke an invariant.</summary>
    public const int Internal = 13;

    /// <summary>DATA_LOSS: unrecoverable data loss or corruption.</summary>
    public const int DataLoss = 15;

    /// <summary>
    /// Gets whether a status says the server failed (UNKNOWN, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE, DATA_LOSS), as a
    /// canary's figures count it; application statuses (NOT_FOUND, INVALID_ARGUMENT...) are the server's answers.
    /// </summary>
    public static bool IsServerError(int status) =>
        status is Unknown or DeadlineExceeded or Internal or Unavailable or DataLoss;

    // Retry reasons for spans and metrics, by code: grpc_unavailable, grpc_resource_exhausted, ...
    private static readonly string[] RetryReasons = [.. Policy.GrpcStatusSet.Names.Select(ToSnakeReason)];

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

        return ReadCode(response.Headers);
    }

    /// <summary>Gets the <c>grpc-status</c> in <paramref name="headers"/> (a response's headers or its trailers), or <see cref="None"/>.</summary>
    public static int ReadCode(System.Net.Http.Headers.HttpHeaders headers)
    {
        if (headers.NonValidated.TryGetValues("grpc-status", out var values))
        {
            foreach (var value in values)
            {
                return int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var code) ? code : None;
            }
        }

        return None;
    }

    /// <summary>Gets the retry reason of a status (<c>grpc_unavailable</c>).</summary>
    public static string RetryReason(int code) => code >= 0 && code < RetryReasons.Length ? RetryReasons[code] : "grpc_other";

    /// <summary>
    /// Makes MeshKit's own Trailers-Only answer to a gRPC call it refused (a timeout, no endpoint...): HTTP/2 200,
    /// <c>application/grpc</c>, <c>grpc-status</c> and a percent-encoded <c>grpc-message</c>, as gRPC over HTTP/2 defines them,
    /// so Grpc.Net.Client raises an RpcException with that status and the explanation as its detail.
    /// </summary>
    public static HttpResponseMessage Answer(HttpRequestMessage request, int code, string message)
    {
        var response = new HttpResponseMessage(System.Net.HttpStatusCode.OK)
        {
            RequestMessage = request,
            Version = System.Net.HttpVersion.Version20,
            Content = new ByteArrayContent([]),
        };
        response.Content.Headers.TryAddWithoutValidation("Content-Type", GrpcContentType);
        response.Headers.TryAddWithoutValidation("grpc-status", code.ToString(System.Globalization.CultureInfo.InvariantCulture));
        response.Headers.TryAddWithoutValidation("grpc-message", EncodeMessage(message));
        return response;
    }

    /// <summary>
    /// Percent-encodes a <c>grpc-message</c> as the gRPC protocol asks: UTF-8, every byte outside printable ASCII (and '%')
    /// as <c>%XX</c>. Clients decode it back (Grpc.Net.Client's <c>Status.Detail</c>), and Kestrel refuses non-ASCII header
    /// values. A plain message is returned as it is.
    /// </summary>
    public static string EncodeMessage(string message)
    {
        var plain = true;
        foreach (var c in message)
        {
            plain &= c is >= ' ' and <= '~' and not '%';
        }

        if (plain)
        {
            return message;
        }

        var text = new System.Text.StringBuilder(message.Length + 16);
        foreach (var b in System.Text.Encoding.UTF8.GetBytes(message))
        {
            if (b is >= 0x20 and <= 0x7E and not (byte)'%')
            {
                text.Append((char)b);
            }
            else
            {
                text.Append('%').Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            }
        }

        return text.ToString();
    }

    private static string ToSnakeReason(string name)
    {
        var text = new System.Text.StringBuilder("grpc_");
        for (var i = 0; i < name.Length; i++)
        {
            if (char.IsUpper(name[i]) && i > 0)
            {
                text.Append('_');
            }

            text.Append(char.ToLowerInvariant(name[i]));
        }

        return text.ToString();
    }

    /// <summary>Gets whether a request or response body is gRPC: application/grpc, application/grpc+proto, application/grpc; charset=...</summary>
    public static bool IsGrpc(HttpContent content)
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
