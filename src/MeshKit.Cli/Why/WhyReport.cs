namespace MeshKit.Cli.Why;

/// <summary>The request <c>meshctl why</c> explains.</summary>
internal sealed record WhyRequest(
    string From,
    string CallerSpiffeId,
    string To,
    string DestinationSpiffeId,
    string Method,
    string Path,
    IReadOnlyDictionary<string, string> Headers);

/// <summary>The route the caller's policy matches.</summary>
/// <param name="Name">The route's name; <c>default</c> when no configured route matched (the span's <c>mesh.route</c>).</param>
/// <param name="Index">Its index in the destination's route list, or -1 for the implicit default route.</param>
/// <param name="Matched">Whether a configured route matched.</param>
/// <param name="Match">What the route matches, in words.</param>
/// <param name="RoutesTried">How many configured routes the destination has.</param>
/// <param name="PolicyFrom">Whose settings the destination's policy comes from: <c>Destinations:orders</c> or <c>Defaults</c>.</param>
internal sealed record WhyRoute(string Name, int Index, bool Matched, string Match, int RoutesTried, string PolicyFrom);

/// <summary>One subset of a split.</summary>
internal sealed record WhySplitEntry(string Subset, int Weight, double Percent);

/// <summary>The subset decision (the span's <c>mesh.subset</c> and <c>mesh.subset.reason</c>).</summary>
/// <param name="Key">The endpoint metadata key that names subsets.</param>
/// <param name="Name">The subset, or <see langword="null"/> when every endpoint is used or the split draws per request.</param>
/// <param name="Reason"><c>header</c>, <c>split</c> or <c>none</c>, as on the span.</param>
/// <param name="Deterministic">Whether every such request gets this subset (false when a split draws between several).</param>
/// <param name="Weight">The chosen subset's weight in the split, when chosen by split.</param>
/// <param name="Percent">Its share of traffic, when chosen by split.</param>
/// <param name="Header">The override header, when overrides are on.</param>
/// <param name="HeaderValue">Its value in this request, if given.</param>
/// <param name="Split">The route's split, if any.</param>
internal sealed record WhySubset(
    string Key,
    string? Name,
    string Reason,
    bool Deterministic,
    int? Weight,
    double? Percent,
    string? Header,
    string? HeaderValue,
    IReadOnlyList<WhySplitEntry> Split);

/// <summary>One endpoint discovery knows for the destination.</summary>
internal sealed record WhyEndpoint(
    string Address,
    string? Version,
    string? Zone,
    int Weight,
    string? SubsetValue,
    bool Candidate,
    IReadOnlyList<string> EjectedBy,
    string Source);

/// <summary>The destination's authorization decision (the server span's <c>mesh.authorization.decision</c> and <c>.rule</c>).</summary>
/// <param name="Known">Whether the destination's authorization policy is known (a central Authorization, or --dest-config).</param>
/// <param name="Enabled">Whether authorization is on at the destination.</param>
/// <param name="Decision"><c>allow</c>, <c>deny</c> or <c>unknown</c>.</param>
/// <param name="Rule">The deciding rule's name, <c>default</c>, <c>off</c>, or <see langword="null"/> when unknown.</param>
/// <param name="Reason">The evaluator's sentence.</param>
/// <param name="Target">What was matched: the route template given, or the normalised path.</param>
/// <param name="RateLimit">The deciding rule's per-caller rate limit, if any.</param>
internal sealed record WhyAuthorization(bool Known, bool Enabled, string Decision, string? Rule, string Reason, string Target, string? RateLimit);

/// <summary>Where one input of the explanation came from.</summary>
internal sealed record WhySource(string Input, string Source);

/// <summary>Whether the request would reach the destination's code, and why not.</summary>
/// <param name="Result"><c>ok</c>, <c>denied</c>, <c>no_endpoints</c>, <c>no_endpoints_in_subset</c>, <c>policy_invalid</c> or <c>unknown</c>.</param>
/// <param name="Summary">One sentence.</param>
internal sealed record WhyOutcome(string Result, string Summary);

/// <summary>The whole of <c>meshctl why --json</c>.</summary>
internal sealed record WhyReport(
    WhyRequest Request,
    WhyRoute? Route,
    WhySubset? Subset,
    IReadOnlyList<WhyEndpoint> Endpoints,
    int Candidates,
    bool PanicMode,
    WhyAuthorization Authorization,
    string? Fault,
    string? Mirror,
    WhyOutcome Outcome,
    IReadOnlyList<WhySource> Sources,
    IReadOnlyList<string> Notes,
    IReadOnlyList<string> PolicyErrors);
