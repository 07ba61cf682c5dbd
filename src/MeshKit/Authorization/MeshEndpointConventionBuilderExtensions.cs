using MeshKit.Authorization;
using Microsoft.AspNetCore.Authorization;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Endpoint metadata for mesh callers: <c>app.MapGet(...).RequireMeshCaller("frontend")</c>.</summary>
public static class MeshEndpointConventionBuilderExtensions
{
    /// <summary>
    /// Requires the caller to be a mesh workload (authenticated by the <c>Mesh</c> scheme), and, when services are named,
    /// one of them. A request without a mesh identity, such as one on a public endpoint, gets 403.
    /// </summary>
    /// <typeparam name="TBuilder">The endpoint builder.</typeparam>
    /// <param name="builder">The endpoint (minimal API, controller or group).</param>
    /// <param name="services">Allowed callers: <c>service</c> (any namespace) or <c>namespace/service</c>. None: any mesh caller.</param>
    /// <returns>The builder.</returns>
    public static TBuilder RequireMeshCaller<TBuilder>(this TBuilder builder, params string[] services)
        where TBuilder : IEndpointConventionBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        var policy = new AuthorizationPolicyBuilder(MeshAuthenticationDefaults.AuthenticationScheme)
            .RequireAuthenticatedUser()
            .AddRequirements(new MeshCallerRequirement([.. services]))
            .Build();
        return builder.RequireAuthorization(policy);
    }
}
