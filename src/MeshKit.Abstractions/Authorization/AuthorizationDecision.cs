using MeshKit.Identity;

namespace MeshKit.Authorization;

/// <summary>An authorization decision, with the rule that made it and why.</summary>
/// <param name="Allowed">Whether the request may go through.</param>
/// <param name="Rule">The deciding rule, or <see langword="null"/> when the default action (or "off") decided.</param>
/// <param name="Reason">A sentence saying who, what and why.</param>
public readonly record struct AuthorizationDecision(bool Allowed, AuthorizationRule? Rule, string Reason)
{
    /// <summary>Gets the deciding rule's name, <c>default</c> for the default action, or <c>off</c>.</summary>
    public string RuleName => Rule?.Name ?? (Reason.StartsWith("Authorization is off", StringComparison.Ordinal) ? "off" : "default");
}
