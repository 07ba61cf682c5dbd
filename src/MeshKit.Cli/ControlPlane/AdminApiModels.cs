namespace MeshKit.Cli.ControlPlane;

/// <summary><c>GET /v1/workloads</c>.</summary>
internal sealed record WorkloadList(string TrustDomain, string BundleVersion, IReadOnlyList<WorkloadEntry> Workloads);

/// <summary>One workload instance as the control service last heard from it.</summary>
internal sealed record WorkloadEntry(
    string SpiffeId,
    string? Instance,
    string CertificateSerial,
    DateTimeOffset NotAfter,
    DateTimeOffset? NotBefore,
    string? CertificateIssuer,
    string? BundleVersion,
    string? PolicyVersion,
    string? CentralPolicyVersion,
    string? EjectedEndpoints,
    string? ServiceVersion,
    DateTimeOffset LastSeen);

/// <summary><c>GET /v1/policy</c>: the central documents and their versions.</summary>
internal sealed record PolicyIndex(string? Source, IReadOnlyList<PolicyIndexEntry> Services);

/// <summary>One stored central document.</summary>
internal sealed record PolicyIndexEntry(string Service, string Version);

/// <summary>
/// <c>GET /v1/ca/roots</c> (and the answer of the CA changes): <paramref name="UserSupplied"/> and
/// <paramref name="Issuer"/> (the root, or the replica's intermediate) are absent from older control services.
/// </summary>
internal sealed record CaRoots(string BundleVersion, IReadOnlyList<CaRoot> Roots, bool UserSupplied = false, CaRoot? Issuer = null);

/// <summary>One root of the trust bundle.</summary>
internal sealed record CaRoot(string Id, bool Active, string Subject, string Sha256, DateTimeOffset NotAfter);

/// <summary><c>GET /v1/ca/replicas</c>: this replica's CA record, the other live replicas' records, and why two do not trust each other.</summary>
internal sealed record CaReplicas(CaReplicaRecord Self, IReadOnlyList<CaReplicaRecord> Others, string? Conflict);

/// <summary>What one replica publishes of its CA: the issuer it signs with, the root that issuer chains to, the roots it trusts (SHA-256 fingerprints).</summary>
internal sealed record CaReplicaRecord(string Replica, DateTimeOffset UpdatedAt, string Issuer, string IssuerSha256, string RootSha256, IReadOnlyList<string> Bundle);

/// <summary>
/// The answer of <c>POST /v1/ca/reload</c> on one replica: the new roots, or the refusal (its HTTP status, <c>reason</c>
/// and detail).
/// </summary>
internal sealed record CaReloadAnswer(CaRoots? Roots, int Status, string? Reason, string? Detail);

/// <summary>One difference between two policy documents, by configuration key.</summary>
internal sealed record PolicyChange(string Op, string Path, string? Old, string? New);

/// <summary>The answer of a dry run (<c>POST /v1/policy/{service}/diff</c>).</summary>
internal sealed record PolicyDiffResult(string Service, bool Valid, bool DryRun, string? CurrentVersion, string? Version, IReadOnlyList<PolicyChange> Changes);

/// <summary>The answer of a write (<c>PUT /v1/policy/{service}</c>).</summary>
internal sealed record PolicyPutResult(string Service, string Version, IReadOnlyList<PolicyChange> Changes);

/// <summary>A stored central document and its version (the ETag).</summary>
internal sealed record StoredPolicy(string Json, string? Version);

/// <summary>A validation error the control service returned, with its configuration path.</summary>
internal sealed record PolicyErrorView(string Path, string Message);

/// <summary>The control service refused a policy as invalid; every error names its path.</summary>
internal sealed class PolicyRejectedException(IReadOnlyList<PolicyErrorView> errors, string detail) : Exception(detail)
{
    public IReadOnlyList<PolicyErrorView> Errors { get; } = errors;
}

/// <summary><c>GET /v1/canaries</c>.</summary>
internal sealed record CanaryList(bool Leader, string? StateLocation, IReadOnlyList<CanaryView> Canaries);

/// <summary>One canary as the control service's analysis keeps it.</summary>
internal sealed record CanaryView(
    string Key,
    string Service,
    string Destination,
    string Route,
    string StableSubset,
    string CanarySubset,
    string Phase,
    int Step,
    int Weight,
    int FailedChecks,
    DateTimeOffset? NextCheck,
    string Reason,
    IReadOnlyList<CanaryDecisionView> Decisions);

/// <summary>One decision of a canary, with the figures it was made on.</summary>
internal sealed record CanaryDecisionView(DateTimeOffset At, string Action, int Weight, string Reason, CanaryFiguresView? Stable, CanaryFiguresView? Canary);

/// <summary>A subset's figures over one interval.</summary>
internal sealed record CanaryFiguresView(long Requests, long Failures, double? SuccessRate, double? P99Ms);
