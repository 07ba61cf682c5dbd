using MeshKit.Telemetry;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace MeshKit.Server;

/// <summary>
/// The first server-side stage on every request: on a mesh connection, refuses to serve once either certificate of the
/// connection has expired, and asks Kestrel to close the connection (HTTP/2 GOAWAY), so no request is ever served on a
/// connection authenticated by an expired certificate. The client's pool opens a new connection with current certificates.
/// </summary>
internal sealed partial class MeshServerMiddleware(RequestDelegate next, TimeProvider time, MeshMetrics metrics, ILogger<MeshServerMiddleware> logger)
{
    public Task InvokeAsync(HttpContext context)
    {
        var connection = context.Features.Get<MeshConnection>();
        if (connection is null)
        {
            return next(context);
        }

        var now = time.GetUtcNow();
        if (now < connection.NotAfter && now < connection.ServerNotAfter)
        {
            // The caller's remaining deadline caps the timeouts of mesh calls made while handling this request.
            if (context.Request.Headers.TryGetValue(Resilience.MeshDeadline.HeaderName, out var deadline))
            {
                Resilience.MeshDeadline.SetFromHeader(deadline.ToString());
            }

            return next(context);
        }

        context.Features.Get<IConnectionLifetimeNotificationFeature>()?.RequestClose();
        metrics.RecordExpiredConnectionClose();
        var whose = now >= connection.NotAfter ? "the caller's" : "this server's";
        LogExpiredConnection(logger, connection.SpiffeId.Value, whose);
        return MeshProblem.WriteAsync(
            context,
            StatusCodes.Status421MisdirectedRequest,
            "connection_certificate_expired",
            $"The connection was authenticated with {whose} certificate, which has expired; retry on a new connection.");
    }

    [LoggerMessage(EventId = 5002, Level = LogLevel.Information, Message = "Closing a mesh connection from {SpiffeId}: {Whose} certificate on it has expired.")]
    private static partial void LogExpiredConnection(ILogger logger, string spiffeId, string whose);
}

/// <summary>Puts <see cref="MeshServerMiddleware"/> first in the app's pipeline.</summary>
internal sealed class MeshServerStartupFilter : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.UseMiddleware<MeshServerMiddleware>();
        next(app);
    };
}

/// <summary>Writes MeshKit's refusals as problem+json with a machine-readable <c>reason</c>.</summary>
internal static class MeshProblem
{
    public const string TypePrefix = "urn:meshkit:problem:";

    public static Task WriteAsync(HttpContext context, int status, string reason, string detail)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/problem+json";
        return context.Response.WriteAsJsonAsync(
            new ProblemBody(TypePrefix + reason, Title(status), status, detail, reason),
            MeshJsonContext.Default.ProblemBody,
            contentType: "application/problem+json",
            context.RequestAborted);
    }

    private static string Title(int status) => status switch
    {
        StatusCodes.Status403Forbidden => "The mesh caller may not do this.",
        StatusCodes.Status421MisdirectedRequest => "Retry on a new connection.",
        StatusCodes.Status429TooManyRequests => "Too many requests from this mesh caller.",
        _ => "The mesh refused the request.",
    };
}
