using MeshKit.Telemetry;
using MeshKit.Transport;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace MeshKit.Server;

/// <summary>
/// The first server-side stage on every request: on a mesh connection, refuses to serve once either certificate of the
/// connection has expired, and asks Kestrel to close the connection (HTTP/2 GOAWAY), so no request is ever served on a
/// connection authenticated by an expired certificate. The client's pool opens a new connection with current certificates.
/// </summary>
internal sealed partial class MeshServerMiddleware(
    RequestDelegate next,
    TimeProvider time,
    MeshMetrics metrics,
    Microsoft.Extensions.Options.IOptions<MeshOptions> options,
    Identity.WorkloadIdentitySource identity,
    ILogger<MeshServerMiddleware> logger)
{
    private readonly string _service = options.Value.Service.Name ?? "unknown";
    private readonly string? _version = options.Value.Service.Version;

    public Task InvokeAsync(HttpContext context)
    {
        var connection = context.Features.Get<MeshConnection>();
        if (connection is null)
        {
            return ServeAsync(context, null);
        }

        if (identity.IsRevokedPeer(connection.SpiffeId.Value))
        {
            // Revoked after this connection was authenticated: refuse, and close it so the caller cannot keep using it.
            context.Features.Get<IConnectionLifetimeNotificationFeature>()?.RequestClose();
            metrics.RecordServerHandshakeRefusal(Identity.SvidRejection.Revoked);
            LogRevokedCaller(logger, connection.SpiffeId.Value);
            return MeshProblem.WriteAsync(
                context,
                StatusCodes.Status403Forbidden,
                MeshCallReasons.CallerRevoked,
                $"The control service revoked {connection.SpiffeId}; this connection is being closed.");
        }

        var now = time.GetUtcNow();
        if (now < connection.NotAfter && now < connection.ServerNotAfter)
        {
            // The caller's remaining deadline caps the timeouts of mesh calls made while handling this request: MeshKit's
            // header, or a gRPC caller's grpc-timeout, whichever is sooner (Grpc.AspNetCore itself ends the call at its deadline).
            // Not for a WebSocket: the caller's deadline bounded the upgrade, not the socket's life.
            var headers = context.Request.Headers;
            if ((headers.TryGetValue(Deadlines.MeshDeadline.HeaderName, out var deadline) | headers.TryGetValue(Deadlines.GrpcTimeout.HeaderName, out var grpcTimeout)) && !IsUpgrade(context))
            {
                Deadlines.MeshDeadline.SetFromHeaders(deadline.Count > 0 ? deadline.ToString() : null, grpcTimeout.Count > 0 ? grpcTimeout.ToString() : null, time);
            }

            return ServeAsync(context, connection);
        }

        context.Features.Get<IConnectionLifetimeNotificationFeature>()?.RequestClose();
        metrics.RecordExpiredConnectionClose();
        var whose = now >= connection.NotAfter ? "the caller's" : "this server's";
        LogExpiredConnection(logger, connection.SpiffeId.Value, whose);
        return MeshProblem.WriteAsync(
            context,
            StatusCodes.Status421MisdirectedRequest,
            MeshCallReasons.ConnectionCertificateExpired,
            $"The connection was authenticated with {whose} certificate, which has expired; retry on a new connection.");
    }

    private static bool IsUpgrade(HttpContext context) =>
        context.Features.Get<IHttpUpgradeFeature>()?.IsUpgradableRequest == true || context.Features.Get<IHttpExtendedConnectFeature>()?.IsExtendedConnect == true;

    private Task ServeAsync(HttpContext context, MeshConnection? connection)
    {
        if (connection is not null && ServerSpan.Recorded(context) is { } activity)
        {
            activity.SetTag(MeshTelemetry.Attributes.CallerSpiffeId, connection.SpiffeId.Value);
            activity.SetTag(MeshTelemetry.Attributes.CallerService, connection.SpiffeId.Service);
        }

        // Timed only when someone listens to the golden metrics: otherwise the request costs MeshKit no state machine.
        return metrics.ServerRequestsEnabled ? ServeTimedAsync(context, connection) : next(context);
    }

    private async Task ServeTimedAsync(HttpContext context, MeshConnection? connection)
    {
        var started = time.GetTimestamp();
        try
        {
            await next(context).ConfigureAwait(false);
        }
        finally
        {
            var route = (context.GetEndpoint() as Microsoft.AspNetCore.Routing.RouteEndpoint)?.RoutePattern.RawText;
            metrics.RecordServerRequest(
                connection?.SpiffeId.Service ?? "public",
                _service,
                _version,
                route,
                MeshMetrics.StatusClass(context.Response.StatusCode),
                time.GetElapsedTime(started).TotalSeconds);
        }
    }

    [LoggerMessage(EventId = 5003, Level = LogLevel.Warning, Message = "Refused a request from {SpiffeId} on a connection opened before its identity was revoked; closing the connection.")]
    private static partial void LogRevokedCaller(ILogger logger, string spiffeId);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Information, Message = "Closing a mesh connection from {SpiffeId}: {Whose} certificate on it has expired.")]
    private static partial void LogExpiredConnection(ILogger logger, string spiffeId, string whose);
}

/// <summary>
/// Puts <see cref="MeshServerMiddleware"/> first in the app's pipeline, and the readiness endpoint
/// (<c>Mesh:Health:ReadinessPath</c>, default <c>/mesh/ready</c>) right after it, before routing and authorization, so
/// orchestrators can probe it on a public endpoint without a mesh certificate.
/// </summary>
internal sealed class MeshServerStartupFilter(Microsoft.Extensions.Options.IOptions<MeshOptions> options) : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.UseMiddleware<MeshServerMiddleware>();
        var path = options.Value.Health.ReadinessPath ?? string.Empty;
        if (path.Length > 0)
        {
            app.UseHealthChecks(path, new Microsoft.AspNetCore.Diagnostics.HealthChecks.HealthCheckOptions
            {
                Predicate = check => check.Tags.Contains("ready"),
                ResultStatusCodes =
                {
                    [Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Healthy] = StatusCodes.Status200OK,
                    [Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Degraded] = StatusCodes.Status200OK,
                    [Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Unhealthy] = StatusCodes.Status503ServiceUnavailable,
                },
            });
        }

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
