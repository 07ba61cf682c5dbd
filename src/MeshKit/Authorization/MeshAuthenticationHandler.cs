using System.Text.Encodings.Web;
using MeshKit.Server;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshKit.Authorization;

/// <summary>Names of the <c>Mesh</c> authentication scheme.</summary>
public static class MeshAuthenticationDefaults
{
    /// <summary>The scheme that authenticates mesh callers by their validated client certificate.</summary>
    public const string AuthenticationScheme = "Mesh";
}

/// <summary>
/// The <c>Mesh</c> authentication scheme: the caller's identity comes from the certificate validated in the mesh
/// endpoint's handshake (<see cref="IMeshPeerFeature"/>). It is never the default scheme, so it does not replace a
/// principal the app sets itself (a JWT user, say); policies ask for it by name. Without a mesh identity (a public
/// endpoint) a challenge answers 403 with a reason, since no credential the caller could add would help.
/// </summary>
internal sealed class MeshAuthenticationHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var connection = Context.Features.Get<MeshConnection>();
        return Task.FromResult(connection is null
            ? AuthenticateResult.NoResult()
            : AuthenticateResult.Success(new AuthenticationTicket(connection.Principal, Scheme.Name)));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties) =>
        MeshProblem.WriteAsync(
            Context,
            StatusCodes.Status403Forbidden,
            "mesh_caller_required",
            "This endpoint only serves mesh callers, and this request has no mesh identity (it did not arrive on the mesh endpoint with a mesh client certificate).");

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties)
    {
        var caller = Context.Features.Get<IMeshPeerFeature>()?.SpiffeId.Value ?? "an unknown caller";
        var allowed = Context.Items.TryGetValue(MeshCallerAuthorizationHandler.AllowedKey, out var list) ? list as string : null;
        return MeshProblem.WriteAsync(
            Context,
            StatusCodes.Status403Forbidden,
            "mesh_caller_not_allowed",
            $"{caller} may not call this endpoint" + (allowed is null ? "." : $"; allowed callers: {allowed}."));
    }
}
