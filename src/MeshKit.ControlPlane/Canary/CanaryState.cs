using System.Text.Json.Serialization;

namespace MeshKit.ControlPlane.Canary;

/// <summary>Where a canary is.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<CanaryPhase>))]
internal enum CanaryPhase
{
    /// <summary>Moving: checked every interval, a step up after each passed check.</summary>
    Progressing,

    /// <summary>Waiting for what a check needs (traffic, reports, endpoints); no step is taken, no check counts.</summary>
    Waiting,

    /// <summary>Paused by an operator: nothing moves until resumed.</summary>
    Paused,

    /// <summary>Done: all traffic on the canary subset.</summary>
    Promoted,

    /// <summary>Done: all traffic back on the stable subset, after failed checks or an abort.</summary>
    RolledBack,

    /// <summary>Done: held at the last step's weight (<c>Promote: false</c>).</summary>
    Finished,
}

/// <summary>One decision of the analysis or an operator, with the figures it was made on.</summary>
internal sealed record CanaryDecision(
    [property: JsonPropertyName("at")] DateTimeOffset At,
    [property: JsonPropertyName("action")] string Action,
    [property: JsonPropertyName("weight")] int Weight,
    [property: JsonPropertyName("reason")] string Reason,
    [property: JsonPropertyName("stable")] FiguresView? Stable,
    [property: JsonPropertyName("canary")] FiguresView? Canary);

/// <summary>A subset's figures as the API shows them.</summary>
internal sealed record FiguresView(
    [property: JsonPropertyName("requests")] long Requests,
    [property: JsonPropertyName("failures")] long Failures,
    [property: JsonPropertyName("successRate")] double? SuccessRate,
    [property: JsonPropertyName("p99Ms")] double? P99Milliseconds)
{
    public static FiguresView Of(SubsetFigures figures) =>
        new(figures.Requests, figures.Failures, figures.SuccessRate is { } rate ? Math.Round(rate, 3) : null, figures.P99Milliseconds is { } p99 ? Math.Round(p99, 1) : null);
}

/// <summary>
/// The state of one canary, kept by the leading replica (in the data directory, or in Consul KV with replicas) so a
/// restart or a new leader goes on from where it was.
/// </summary>
internal sealed record CanaryState
{
    /// <summary>The most decisions kept per canary.</summary>
    public const int MaxDecisions = 30;

    /// <summary>Gets the canary's key: <c>&lt;service&gt;/&lt;destination&gt;/&lt;route&gt;</c>.</summary>
    [JsonPropertyName("key")]
    public required string Key { get; init; }

    /// <summary>Gets the calling service whose central policy holds the canary route.</summary>
    [JsonPropertyName("service")]
    public required string Service { get; init; }

    /// <summary>Gets the destination.</summary>
    [JsonPropertyName("destination")]
    public required string Destination { get; init; }

    /// <summary>Gets the route's name.</summary>
    [JsonPropertyName("route")]
    public required string Route { get; init; }

    /// <summary>Gets the stable subset.</summary>
    [JsonPropertyName("stableSubset")]
    public required string StableSubset { get; init; }

    /// <summary>Gets the canary subset.</summary>
    [JsonPropertyName("canarySubset")]
    public required string CanarySubset { get; init; }

    /// <summary>Gets a fingerprint of the spec: a changed spec starts the canary over.</summary>
    [JsonPropertyName("fingerprint")]
    public required string Fingerprint { get; init; }

    /// <summary>Gets where the canary is.</summary>
    [JsonPropertyName("phase")]
    public CanaryPhase Phase { get; init; }

    /// <summary>Gets the step reached (an index into the spec's steps), or -1 before the first.</summary>
    [JsonPropertyName("step")]
    public int Step { get; init; } = -1;

    /// <summary>Gets the canary's weight in percent, as last written.</summary>
    [JsonPropertyName("weight")]
    public int Weight { get; init; }

    /// <summary>Gets the failed checks so far.</summary>
    [JsonPropertyName("failedChecks")]
    public int FailedChecks { get; init; }

    /// <summary>Gets when the next check is due.</summary>
    [JsonPropertyName("nextCheck")]
    public DateTimeOffset? NextCheck { get; init; }

    /// <summary>Gets why the canary is where it is, in words.</summary>
    [JsonPropertyName("reason")]
    public string Reason { get; init; } = string.Empty;

    /// <summary>Gets the latest decisions, newest last.</summary>
    [JsonPropertyName("decisions")]
    public IReadOnlyList<CanaryDecision> Decisions { get; init; } = [];

    /// <summary>Gets whether the canary has ended (promoted, rolled back, or held at its last step).</summary>
    [JsonIgnore]
    public bool IsDone => Phase is CanaryPhase.Promoted or CanaryPhase.RolledBack or CanaryPhase.Finished;

    /// <summary>Adds a decision, keeping the latest <see cref="MaxDecisions"/>.</summary>
    public CanaryState With(CanaryDecision decision) =>
        this with { Decisions = [.. Decisions.Skip(Math.Max(0, Decisions.Count + 1 - MaxDecisions)), decision] };
}
