using System.Globalization;
using System.Text;
using MeshKit.Server;
using MeshKit.Telemetry;
using MeshKit.Transport;
using Microsoft.AspNetCore.Http;

namespace MeshKit.Authorization;

/// <summary>
/// Answers a mesh refusal of a gRPC request in gRPC's terms: HTTP 200, Trailers-Only (no body; the status in the response
/// headers), <c>grpc-status</c> PERMISSION_DENIED, UNAUTHENTICATED or RESOURCE_EXHAUSTED, and <c>grpc-message</c> with the
/// sentence the problem body of an HTTP refusal gives (caller, method, target, rule), so the caller's <c>RpcException</c>
/// explains itself instead of saying "Bad gRPC response. HTTP status code: 403". The machine-readable reason goes in
/// <c>x-mesh-reason</c>, which gRPC clients see as trailing metadata.
/// </summary>
internal static class GrpcRefusal
{
    /// <summary>The response header (gRPC trailing metadata) that carries the mesh's machine-readable reason.</summary>
    internal const string ReasonHeader = "x-mesh-reason";

    /// <summary>Whether the request is a gRPC call (content type <c>application/grpc</c>, <c>application/grpc+proto</c>, gRPC-Web...).</summary>
    public static bool IsGrpc(HttpRequest request) =>
        request.Headers.ContentType.ToString().StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase);

    /// <summary>The gRPC status for a refusal answered with <paramref name="httpStatus"/> over HTTP.</summary>
    public static int StatusFor(HttpContext context, int httpStatus) => httpStatus switch
    {
        StatusCodes.Status429TooManyRequests => GrpcStatus.ResourceExhausted,

        // No mesh identity: gRPC's codes forbid PERMISSION_DENIED then.
        _ when context.Features.Get<IMeshPeerFeature>() is null => GrpcStatus.Unauthenticated,
        _ => GrpcStatus.PermissionDenied,
    };

    /// <summary>Writes the refusal as a Trailers-Only gRPC response.</summary>
    public static Task WriteAsync(HttpContext context, int httpStatus, string reason, string detail, TimeSpan? retryAfter)
    {
        var status = StatusFor(context, httpStatus);
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;

        // The request's own gRPC content type (application/grpc, +proto, gRPC-Web), without parameters, as gRPC servers answer.
        var contentType = context.Request.Headers.ContentType.ToString();
        var semicolon = contentType.IndexOf(';', StringComparison.Ordinal);
        response.ContentType = (semicolon < 0 ? contentType : contentType[..semicolon]).Trim();
        var headers = response.Headers;
        headers["grpc-status"] = status.ToString(CultureInfo.InvariantCulture);
        headers["grpc-message"] = GrpcStatus.EncodeMessage(detail);
        headers[ReasonHeader] = reason;
        if (retryAfter is { } after)
        {
            // gRPC's server pushback: a client whose retry policy retries RESOURCE_EXHAUSTED waits this long.
            headers["grpc-retry-pushback-ms"] = Math.Max(1, (long)Math.Ceiling(after.TotalMilliseconds)).ToString(CultureInfo.InvariantCulture);
        }

        if (ServerSpan.Recorded(context) is { } activity)
        {
            activity.SetTag(MeshTelemetry.Attributes.GrpcStatusCode, status);
        }

        // No body: headers with END_STREAM, which gRPC clients read as the call's status (Trailers-Only).
        return Task.CompletedTask;
    }
}
