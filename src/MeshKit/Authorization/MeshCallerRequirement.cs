using MeshKit.Server;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace MeshKit.Authorization;

/// <summary>Requires a mesh caller, optionally one of the named services (<c>service</c> or <c>namespace/service</c>).</summary>
public sealed class MeshCallerRequirement : IAuthorizationRequirement
{
    /// <summary>Initializes a new instance.</summary>
    /// <param name="services">The services allowed; empty for any mesh caller.</param>
    public MeshCallerRequirement(IReadOnlyList<string> services)
    {
        ArgumentNullException.ThrowIfNull(services);
        Services = services;
    }

    /// <summary>Gets the services allowed (<c>service</c> in any namespace, or <c>namespace/service</c>); empty for any mesh caller.</summary>
    public IReadOnlyList<string> Services { get; }

    internal bool Allows(IMeshPeerFeature peer)
    {
        if (Services.Count == 0)
        {
            return true;
        }

        foreach (var allowed in Services)
        {
            var slash = allowed.IndexOf('/', StringComparison.Ordinal);
            var matches = slash < 0
                ? string.Equals(allowed, peer.SpiffeId.Service, StringComparison.Ordinal)
                : allowed.AsSpan(0, slash).SequenceEqual(peer.SpiffeId.Namespace) && allowed.AsSpan(slash + 1).SequenceEqual(peer.SpiffeId.Service);
            if (matches)
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>Evaluates <see cref="MeshCallerRequirement"/> against the validated mesh peer.</summary>
internal sealed class MeshCallerAuthorizationHandler : AuthorizationHandler<MeshCallerRequirement>
{
    internal const string AllowedKey = "mesh.allowed";

    protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, MeshCallerRequirement requirement)
    {
        var http = context.Resource as HttpContext;
        var peer = http?.Features.Get<IMeshPeerFeature>();
        if (peer is not null && requirement.Allows(peer))
        {
            context.Succeed(requirement);
        }
        else if (peer is not null && http is not null)
        {
            // Said back to the caller in the 403, so a refusal explains itself.
            http.Items[AllowedKey] = string.Join(", ", requirement.Services);
            context.Fail(new AuthorizationFailureReason(this, $"{peer.SpiffeId} is not one of: {string.Join(", ", requirement.Services)}"));
        }

        return Task.CompletedTask;
    }
}
