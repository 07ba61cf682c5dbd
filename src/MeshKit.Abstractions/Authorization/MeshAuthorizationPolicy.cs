using System.Collections.Immutable;

namespace MeshKit.Authorization;

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
