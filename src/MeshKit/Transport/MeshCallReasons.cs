namespace MeshKit.Transport;

/// <summary>
/// The values of <see cref="MeshCallException.Reason"/>, to match on
/// (<c>catch (MeshCallException ex) when (ex.Reason == MeshCallReasons.NoEndpoints)</c>). The same words are the
/// <c>mesh.outcome</c> of the call's span and metrics. docs/troubleshooting.md gives each one's causes and fixes.
/// </summary>
/// <remarks>
/// The reasons from <see cref="MeshCallerRequired"/> on are answers of the destination's mesh endpoint: a mesh call
/// meets them as a <see cref="MeshCallException"/> only when it opens a WebSocket (a refused upgrade); other calls get
/// them as the HTTP answer (problem+json with this <c>reason</c>) or, for gRPC, as the status with
/// <c>x-mesh-reason</c> in the trailers.
/// </remarks>
public static class MeshCallReasons
{
    /// <summary>This workload has no valid certificate (not issued yet, expired, or revoked), so no call is made.</summary>
    public const string IdentityUnavailable = "identity_unavailable";

    /// <summary>
    /// The call's total timeout or the caller's deadline ran out (waiting for the response headers, in a retry's back-off, or
    /// queued for a concurrency slot), or an attempt timeout ran out with no retry left.
    /// </summary>
    public const string Timeout = "timeout";

    /// <summary>The destination's concurrency limit is reached and its queue is full: refused at once.</summary>
    public const string ConcurrencyLimit = "concurrency_limit";

    /// <summary>Discovery knows no endpoint of the destination.</summary>
    public const string NoEndpoints = "no_endpoints";

    /// <summary>The subset the route chose (by weight or by the <c>x-mesh-subset</c> header) has no endpoint.</summary>
    public const string NoEndpointsInSubset = "no_endpoints_in_subset";

    /// <summary>The request is not for a mesh destination and <c>Mesh:Client:NonMeshHosts</c> is <c>Refuse</c>.</summary>
    public const string NotAMeshDestination = "not_a_mesh_destination";

    /// <summary>A response body delivered no data for the destination's <c>IdleTimeout</c>; thrown by the body's read.</summary>
    public const string IdleTimeout = "idle_timeout";

    /// <summary>The endpoint serves mesh callers only and the request came with no mesh identity (403).</summary>
    public const string MeshCallerRequired = "mesh_caller_required";

    /// <summary>The caller's identity is not among the callers the endpoint's <c>RequireMeshCaller</c> allows (403).</summary>
    public const string MeshCallerNotAllowed = "mesh_caller_not_allowed";

    /// <summary>A <c>Mesh:Authorization</c> rule, or its default action, denies this caller this request (403).</summary>
    public const string MeshAuthorizationDenied = "mesh_authorization_denied";

    /// <summary>The caller is over the rate limit of the authorization rule that allowed it (429, with <c>Retry-After</c>).</summary>
    public const string MeshRateLimited = "mesh_rate_limited";

    /// <summary>The control service revoked the caller's identity after its connection was opened (403; the connection closes).</summary>
    public const string CallerRevoked = "caller_revoked";

    /// <summary>A certificate the connection was authenticated with has expired; retried on a new connection (421).</summary>
    public const string ConnectionCertificateExpired = "connection_certificate_expired";
}
