using System.Text.Json;
using MeshKit.ControlPlane.Coordination;
using MeshKit.ControlPlane.Policy;
using MeshKit.ControlPlane.Tokens;
using MeshKit.ControlPlane.Workloads;
using MeshKit.Routing;

namespace MeshKit.ControlPlane.Canary;

/// <summary>
/// The canary endpoints: <c>POST /v1/workloads/self/traffic</c>, where workloads report their calls on canary routes
/// (authenticated by their certificate, like the watch), and the admin API (admin token): <c>GET /v1/canaries</c> and
/// <c>POST /v1/canaries/{service}/{destination}/{route}/{action}</c> (promote, abort, pause, resume; leader only).
/// </summary>
internal static class CanaryEndpoints
{
    private const int MaxReportBytes = 512 * 1024;
    private const long MaxCount = 1_000_000_000;
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static IEndpointRouteBuilder MapCanaryApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost("/v1/workloads/self/traffic", ReportAsync);
        var admin = endpoints.MapGroup("/v1/canaries").AddEndpointFilter<AdminEndpointFilter>();
        admin.MapGet("/", (CanaryController canaries, ReplicaLeadership leadership) => Results.Json(new
        {
            leader = leadership.IsLeader,
            stateLocation = canaries.StateLocation,
            canaries = canaries.States,
        }));
        admin.MapPost("/{service}/{destination}/{route}/{action}", async (string service, string destination, string route, string action, CanaryController canaries, ReplicaLeadership leadership, CancellationToken cancellationToken) =>
        {
            (CanaryState? State, (int Status, string Reason, string Detail)? Refusal) outcome = default;
            var refused = await leadership.RunAsLeaderAsync(
                $"canary {action}",
                async token => outcome = await canaries.ApplyAsync($"{service}/{destination}/{route}", action, token).ConfigureAwait(false),
                cancellationToken).ConfigureAwait(false);
            if (refused is not null)
            {
                return refused.ToResult();
            }

            return outcome.Refusal is { } r ? Problems.Refuse(r.Status, r.Reason, r.Detail) : Results.Json(outcome.State);
        });
        return endpoints;
    }

    private static async Task<IResult> ReportAsync(
        HttpContext http,
        CertificateAuthority.CertificateAuthority ca,
        IdentityRevocations revocations,
        CanaryTrafficStore traffic,
        TimeProvider time)
    {
        if (!ControlChannel.WatchEndpoints.TryAuthenticate(http, http.Connection.ClientCertificate, ca, time, out var id, out var refusal))
        {
            return refusal;
        }

        if (revocations.IsRevoked(id.Value, out var why))
        {
            return Problems.Refuse(StatusCodes.Status403Forbidden, "identity-revoked", $"{id} is revoked ({why}); its reports are not taken.");
        }

        if (http.Request.ContentLength > MaxReportBytes)
        {
            return Problems.Refuse(StatusCodes.Status413PayloadTooLarge, "body-too-large", $"A traffic report is at most {MaxReportBytes} bytes.");
        }

        CanaryTrafficReport? report;
        try
        {
            using var limited = new MemoryStream();
            var buffer = new byte[16 * 1024];
            int read;
            while ((read = await http.Request.Body.ReadAsync(buffer, http.RequestAborted).ConfigureAwait(false)) > 0)
            {
                if (limited.Length + read > MaxReportBytes)
                {
                    return Problems.Refuse(StatusCodes.Status413PayloadTooLarge, "body-too-large", $"A traffic report is at most {MaxReportBytes} bytes.");
                }

                limited.Write(buffer, 0, read);
            }

            report = JsonSerializer.Deserialize<CanaryTrafficReport>(limited.ToArray(), Json);
        }
        catch (JsonException ex)
        {
            return Problems.Refuse(StatusCodes.Status400BadRequest, "report-invalid", $"The traffic report is not valid JSON: {ex.Message}");
        }

        if (Validate(report) is { } problem)
        {
            return Problems.Refuse(StatusCodes.Status400BadRequest, "report-invalid", problem);
        }

        traffic.Add(PolicyDocument.ServiceKey(id), report!);
        return Results.NoContent();
    }

    /// <summary>Checks a report field by field; returns the first problem, naming the field.</summary>
    internal static string? Validate(CanaryTrafficReport? report)
    {
        if (report?.Routes is null)
        {
            return "'routes' is missing.";
        }

        if (report.Routes.Count > CanaryTrafficReport.MaxRoutes)
        {
            return $"'routes' has {report.Routes.Count} entries; at most {CanaryTrafficReport.MaxRoutes}.";
        }

        for (var i = 0; i < report.Routes.Count; i++)
        {
            var entry = report.Routes[i];
            var at = $"routes[{i}]";
            if (entry is null)
            {
                return $"'{at}' is null.";
            }

            if (entry.Destination is null || !MeshNames.IsValidServiceKey(entry.Destination, out _))
            {
                return $"'{at}.destination' is '{entry.Destination}', not a destination (orders, or orders.payments).";
            }

            if (string.IsNullOrEmpty(entry.Route) || entry.Route.Length > 128)
            {
                return $"'{at}.route' must be a route name of 1 to 128 characters.";
            }

            if (entry.Subset is null || !MeshNames.IsValidSubsetName(entry.Subset, out _))
            {
                return $"'{at}.subset' is '{entry.Subset}', not a subset name.";
            }

            if (entry.Requests is < 0 or > MaxCount || entry.Failures < 0 || entry.Failures > entry.Requests)
            {
                return $"'{at}': requests ({entry.Requests}) must be 0 to {MaxCount}, and failures ({entry.Failures}) 0 to requests.";
            }

            if (entry.Latency is null || entry.Latency.Length != LatencyHistogram.BucketCount)
            {
                return $"'{at}.latency' must have {LatencyHistogram.BucketCount} buckets (LatencyHistogram.BoundsMilliseconds), not {entry.Latency?.Length ?? 0}.";
            }

            foreach (var count in entry.Latency)
            {
                if (count is < 0 or > MaxCount)
                {
                    return $"'{at}.latency' has a count of {count}; counts are 0 to {MaxCount}.";
                }
            }
        }

        return null;
    }
}
