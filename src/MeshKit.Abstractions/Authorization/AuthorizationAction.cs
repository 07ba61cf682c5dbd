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
