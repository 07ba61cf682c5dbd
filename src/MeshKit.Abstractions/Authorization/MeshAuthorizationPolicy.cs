using System.Collections.Immutable;

namespace MeshKit.Authorization;

/// <summary>What a matching rule does.</summary>
public enum AuthorizationAction
{
    /// <summary>Let the request through.</summary>
    Allow,

    /// <summary>Refuse it with 403.</summary>
    Deny,
}

/// <summary>Which callers a rule applies to. An empty match (no <c>From</c>) applies to every caller, mesh or public.</summary>
public sealed record CallerMatch
{
    /// <summary>Gets a match for every caller.</summary>
    public static readonly CallerMatch Anyone = new() { Any = true };

    /// <summary>Gets whether every caller matches.</summary>
    public bool Any { get; init; }

    /// <summary>Gets caller service names (any namespace), or <c>namespace/service</c>.</summary>
    public ImmutableArray<string> Services { get; init; } = [];

    /// <summary>Gets caller namespaces.</summary>
    public ImmutableArray<string> Namespaces { get; init; } = [];

    /// <summary>Gets SPIFFE ID patterns: exact IDs, or a prefix ending in <c>*</c>.</summary>
    public ImmutableArray<string> SpiffeIds { get; init; } = [];

    /// <summary>Gets whether callers without a mesh identity (public endpoints) match.</summary>
    public bool Public { get; init; }
}

/// <summary>Which requests a rule applies to, matched against the routed endpoint. Empty lists match everything.</summary>
public sealed record RequestMatch
{
    /// <summary>Gets path patterns: a route template or path as written (<c>/api/orders/{id}</c>), a segment prefix (<c>/api/*</c>) or <c>*</c>.</summary>
    public ImmutableArray<string> Paths { get; init; } = [];

    /// <summary>Gets methods (upper case).</summary>
    public ImmutableArray<string> Methods { get; init; } = [];
}

/// <summary>A per-caller rate limit on the requests a rule allows: a token bucket per caller identity.</summary>
/// <param name="PermitsPerSecond">Sustained requests per second per caller.</param>
/// <param name="Burst">Requests a caller may make at once above the sustained rate.</param>
public sealed record RateLimitPolicy(double PermitsPerSecond, int Burst)
{
    /// <summary>The default of <see cref="MaxCallers"/>.</summary>
    public const int DefaultMaxCallers = 100_000;

    /// <summary>
    /// Gets the most callers whose buckets the rule tracks at once. Callers whose bucket is full again (idle) are dropped
    /// to make room; when every tracked caller is still active, a new caller is refused with 429 (fails closed) until
    /// one falls idle. Default <see cref="DefaultMaxCallers"/>.
    /// </summary>
    public int MaxCallers { get; init; } = DefaultMaxCallers;
}

/// <summary>One authorization rule.</summary>
public sealed record AuthorizationRule
{
    /// <summary>Gets the rule's name (<c>rule-0</c> when unnamed).</summary>
    public required string Name { get; init; }

    /// <summary>Gets the rule's index.</summary>
    public required int Index { get; init; }

    /// <summary>Gets what the rule does when it matches.</summary>
    public AuthorizationAction Action { get; init; } = AuthorizationAction.Allow;

    /// <summary>Gets which callers it applies to.</summary>
    public CallerMatch From { get; init; } = CallerMatch.Anyone;

    /// <summary>Gets which requests it applies to.</summary>
    public RequestMatch To { get; init; } = new();

    /// <summary>Gets the per-caller rate limit on allowed requests, if any.</summary>
    public RateLimitPolicy? RateLimit { get; init; }
}

/// <summary>
/// The serving side's authorization: ordered rules, the first matching one decides, else <see cref="DefaultAction"/>.
/// With no <c>Mesh:Authorization</c> section, authorization is off and every request is allowed (as in Istio with no policy).
/// </summary>
public sealed record MeshAuthorizationPolicy
{
    /// <summary>Gets the policy used when <c>Mesh:Authorization</c> is absent: off.</summary>
    public static readonly MeshAuthorizationPolicy Off = new() { Enabled = false };

    /// <summary>Gets whether authorization is enforced.</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>Gets what happens to a request no rule matches. Default <see cref="AuthorizationAction.Deny"/>.</summary>
    public AuthorizationAction DefaultAction { get; init; } = AuthorizationAction.Deny;

    /// <summary>Gets the rules, in order.</summary>
    public ImmutableArray<AuthorizationRule> Rules { get; init; } = [];
}
