using System.Diagnostics;
using System.Diagnostics.Metrics;
using MeshKit.Identity;

namespace MeshKit.Telemetry;

/// <summary>
/// MeshKit's instruments, all under the meter <see cref="MeterName"/>. Names, units and attributes are documented in
/// docs/observability.md.
/// </summary>
internal sealed class MeshMetrics
{
    /// <summary>The name of MeshKit's meter and activity source.</summary>
    public const string MeterName = "MeshKit";

    private readonly Counter<long> _renewals;
    private readonly Counter<long> _serverHandshakeRefusals;
    private readonly Counter<long> _clientHandshakeRefusals;
    private readonly Counter<long> _expiredConnectionCloses;
    private readonly Counter<long> _policyReloads;
    private readonly Counter<long> _retries;
    private readonly Counter<long> _budgetExhausted;
    private readonly Counter<long> _concurrencyRejections;
    private readonly Counter<long> _ejections;
    private static readonly double[] DurationBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
    private readonly Counter<long> _clientRequests;
    private readonly Histogram<double> _clientDuration;
    private readonly Counter<long> _serverRequests;
    private readonly Histogram<double> _serverDuration;
    private readonly Counter<long> _connectionsRejected;
    private readonly Counter<long> _denials;
    private readonly Counter<long> _rateLimited;

    /// <summary>Initializes the instruments.</summary>
    /// <param name="meterFactory">The meter factory.</param>
    public MeshMetrics(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        Meter = meterFactory.Create(MeterName);
        _renewals = Meter.CreateCounter<long>("mesh.identity.renewals", "{renewal}", "Certificate renewals attempted, by outcome.");
        _serverHandshakeRefusals = Meter.CreateCounter<long>("mesh.server.handshake.refusals", "{handshake}", "Client certificates the mesh endpoint refused, by reason.");
        _clientHandshakeRefusals = Meter.CreateCounter<long>("mesh.client.handshake.refusals", "{handshake}", "Server certificates mesh clients refused, by reason and destination.");
        _retries = Meter.CreateCounter<long>("mesh.client.retries", "{retry}", "Retries of mesh calls, by destination and reason.");
        _budgetExhausted = Meter.CreateCounter<long>("mesh.client.retry_budget.exhausted", "{retry}", "Retries the retry budget refused, by destination.");
        _concurrencyRejections = Meter.CreateCounter<long>("mesh.client.concurrency.rejections", "{request}", "Mesh calls refused by the destination's concurrency limit.");
        _ejections = Meter.CreateCounter<long>("mesh.client.ejections", "{ejection}", "Endpoints ejected by outlier detection, by destination.");
        _clientRequests = Meter.CreateCounter<long>("mesh.client.requests", "{request}", "Logical mesh calls made, by source, destination, subset, status class and outcome.");
        _clientDuration = Meter.CreateHistogram("mesh.client.request.duration", "s", "Duration of logical mesh calls, retries included.", advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });
        _serverRequests = Meter.CreateCounter<long>("mesh.server.requests", "{request}", "Requests served, by calling service (or public), serving service, subset, route and status class.");
        _serverDuration = Meter.CreateHistogram("mesh.server.request.duration", "s", "Duration of requests served.", advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });
        _connectionsRejected = Meter.CreateCounter<long>("mesh.server.connections.rejected", "{connection}", "Connections the mesh endpoint closed at once because it held Mesh:Endpoint:MaxConnections.");
        _denials = Meter.CreateCounter<long>("mesh.server.authorization.denials", "{request}", "Requests mesh authorization denied, by deciding rule.");
        _rateLimited = Meter.CreateCounter<long>("mesh.server.rate_limited", "{request}", "Requests refused by a rule's per-caller rate limit, by rule.");
        _policyReloads = Meter.CreateCounter<long>("mesh.policy.reloads", "{reload}", "Policy reloads, by outcome (applied or rejected).");
        _expiredConnectionCloses = Meter.CreateCounter<long>("mesh.server.expired_connection.closes", "{connection}", "Mesh connections closed because a certificate on them expired.");
    }

    /// <summary>Gets the meter, for instruments added by other parts of MeshKit.</summary>
    public Meter Meter { get; }

    internal void RecordRenewal(bool success) =>
        _renewals.Add(1, new KeyValuePair<string, object?>("mesh.outcome", success ? "success" : "failure"));

    internal void RecordServerHandshakeRefusal(SvidRejection reason) =>
        _serverHandshakeRefusals.Add(1, new KeyValuePair<string, object?>("mesh.reason", ReasonName(reason)));

    internal void RecordClientHandshakeRefusal(SvidRejection reason, string destination) =>
        _clientHandshakeRefusals.Add(1, new TagList { { "mesh.reason", ReasonName(reason) }, { "mesh.destination.service", destination } });

    internal void RecordExpiredConnectionClose() => _expiredConnectionCloses.Add(1);

    internal void RecordRetry(string destination, string reason) =>
        _retries.Add(1, new TagList { { "mesh.destination.service", destination }, { "mesh.retry.reason", reason } });

    internal void RecordRetryBudgetExhausted(string destination) =>
        _budgetExhausted.Add(1, new KeyValuePair<string, object?>("mesh.destination.service", destination));

    internal void RecordConcurrencyRejection(string destination) =>
        _concurrencyRejections.Add(1, new KeyValuePair<string, object?>("mesh.destination.service", destination));

    internal void RecordEjection(string destination, string endpoint)
    {
        // The endpoint address stays off the metric (cardinality); the log names it.
        _ = endpoint;
        _ejections.Add(1, new KeyValuePair<string, object?>("mesh.destination.service", destination));
    }

    /// <summary>Gets the counts of calls on canary routes, which the workload reports to the control service.</summary>
    internal CanaryTrafficRecorder CanaryTraffic { get; } = new();

    /// <summary>Gets whether anyone listens to the server's golden metrics (when nobody does, a request is not timed at all).</summary>
    internal bool ServerRequestsEnabled => _serverRequests.Enabled || _serverDuration.Enabled;

    /// <summary>Records a logical call; <paramref name="grpcStatus"/> is its gRPC status, or -1 (no tag) when it has none.</summary>
    internal void RecordClientRequest(string source, string destination, string? subset, string statusClass, string outcome, double seconds, int grpcStatus = -1)
    {
        var tags = new TagList
        {
            { MeshTelemetry.Attributes.SourceService, source },
            { MeshTelemetry.Attributes.DestinationService, destination },
            { MeshTelemetry.Attributes.Subset, subset ?? "all" },
            { MeshTelemetry.Attributes.StatusClass, statusClass },
            { MeshTelemetry.Attributes.Outcome, outcome },
        };
        if (grpcStatus >= 0)
        {
            tags.Add(MeshTelemetry.Attributes.GrpcStatusCode, TagValues.Box(grpcStatus));
        }

        _clientRequests.Add(1, tags);
        _clientDuration.Record(seconds, tags);
    }

    internal void RecordServerRequest(string source, string destination, string? subset, string? route, string statusClass, double seconds)
    {
        var tags = new TagList
        {
            { MeshTelemetry.Attributes.SourceService, source },
            { MeshTelemetry.Attributes.DestinationService, destination },
            { MeshTelemetry.Attributes.Subset, subset ?? "none" },
            { "http.route", route ?? "(none)" },
            { MeshTelemetry.Attributes.StatusClass, statusClass },
        };
        _serverRequests.Add(1, tags);
        _serverDuration.Record(seconds, tags);
    }

    internal static string StatusClass(int status) => status switch
    {
        < 200 => "1xx",
        < 300 => "2xx",
        < 400 => "3xx",
        < 500 => "4xx",
        _ => "5xx",
    };

    internal void RecordConnectionRejected() => _connectionsRejected.Add(1);

    internal void RecordAuthorizationDenial(string rule) =>
        _denials.Add(1, new KeyValuePair<string, object?>("mesh.authorization.rule", rule));

    internal void RecordRateLimited(string rule) =>
        _rateLimited.Add(1, new KeyValuePair<string, object?>("mesh.authorization.rule", rule));

    internal void RecordPolicyReload(bool success) =>
        _policyReloads.Add(1, new KeyValuePair<string, object?>("mesh.outcome", success ? "applied" : "rejected"));

    internal static string ReasonName(SvidRejection reason) => reason switch
    {
        SvidRejection.NoCertificate => "no_certificate",
        SvidRejection.UntrustedChain => "untrusted_chain",
        SvidRejection.Expired => "expired",
        SvidRejection.NotYetValid => "not_yet_valid",
        SvidRejection.NotAnSvid => "not_an_svid",
        SvidRejection.InvalidSpiffeId => "invalid_spiffe_id",
        SvidRejection.WrongTrustDomain => "wrong_trust_domain",
        SvidRejection.UnexpectedIdentity => "unexpected_identity",
        SvidRejection.Revoked => "revoked",
        _ => "none",
    };
}
