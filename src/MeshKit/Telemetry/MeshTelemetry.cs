using System.Diagnostics;
using System.Reflection;

namespace MeshKit.Telemetry;

/// <summary>MeshKit's activity source and the names of its span attributes (documented in docs/observability.md).</summary>
public static class MeshTelemetry
{
    /// <summary>The name of MeshKit's activity source (and meter).</summary>
    public const string SourceName = MeshMetrics.MeterName;

    /// <summary>The activity source of logical mesh calls.</summary>
    public static readonly ActivitySource Source = new(SourceName, typeof(MeshTelemetry).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]);

    /// <summary>Span and metric attribute names; MeshKit's own start with <c>mesh.</c>.</summary>
    public static class Attributes
    {
        /// <summary>The calling service.</summary>
        public const string SourceService = "mesh.source.service";

        /// <summary>The destination service.</summary>
        public const string DestinationService = "mesh.destination.service";

        /// <summary>The destination's namespace.</summary>
        public const string DestinationNamespace = "mesh.destination.namespace";

        /// <summary>The route the call matched.</summary>
        public const string Route = "mesh.route";

        /// <summary>The subset the call went to.</summary>
        public const string Subset = "mesh.subset";

        /// <summary>How the subset was chosen: split, header, mirror or none.</summary>
        public const string SubsetReason = "mesh.subset.reason";

        /// <summary>The number of attempts a logical call made.</summary>
        public const string Attempts = "mesh.attempts";

        /// <summary>The attempt number of an attempt span (0 for the first).</summary>
        public const string Attempt = "mesh.attempt";

        /// <summary>Why an attempt is a retry.</summary>
        public const string RetryReason = "mesh.retry.reason";

        /// <summary>The endpoint (address:port) an attempt went to.</summary>
        public const string Endpoint = "mesh.endpoint";

        /// <summary>The outcome: success, http_error, or a MeshKit reason such as timeout or no_endpoints.</summary>
        public const string Outcome = "mesh.outcome";

        /// <summary>The caller's SPIFFE ID, on server spans.</summary>
        public const string CallerSpiffeId = "mesh.caller.spiffe_id";

        /// <summary>The caller's service, on server spans.</summary>
        public const string CallerService = "mesh.caller.service";

        /// <summary>The authorization decision (allow or deny), on server spans.</summary>
        public const string AuthorizationDecision = "mesh.authorization.decision";

        /// <summary>The rule that made the decision.</summary>
        public const string AuthorizationRule = "mesh.authorization.rule";

        /// <summary>The HTTP status class (2xx, 4xx, 5xx), on request metrics.</summary>
        public const string StatusClass = "http.response.status_class";

        /// <summary>
        /// The gRPC status code (0 OK, 5 NOT_FOUND, 14 UNAVAILABLE...) of a gRPC call answered Trailers-Only, on the logical
        /// span and the client's request metrics (OpenTelemetry's RPC conventions). Absent on other calls.
        /// </summary>
        public const string GrpcStatusCode = "rpc.grpc.status_code";
    }
}
