using System.Collections.Immutable;

namespace MeshKit.Authorization;

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
