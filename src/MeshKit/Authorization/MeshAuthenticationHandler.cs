using MeshKit.Server;
using MeshKit.Transport;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;

namespace MeshKit.Authorization;

/// <summary>
/// The <c>Mesh</c> authentication scheme: the caller's identity comes from the certificate validated in the mesh
/// endpoint's handshake (<see cref="IMeshPeerFeature"/>), and its principal is built once per connection. It is never the
/// default scheme, so it does not replace a principal the app sets itself (a JWT user, say); policies ask for it by name.
/// Without a mesh identity (a public endpoint) a challenge answers 403 with a reason, since no credential the caller could
/// add would help. A plain handler: nothing to configure. It is also a request handler, so that the authentication
/// middleware (right after routing) hands every request to <see cref="MeshAuthorizationGate"/>, which authorizes the requests
/// routing left without an endpoint.
/// </summary>
internal sealed class MeshAuthenticationHandler(MeshAuthorizationGate gate) : IAuthenticationRequestHandler
{
    private AuthenticationScheme _scheme = null!;
    private HttpContext _context = null!;

    public Task InitializeAsync(AuthenticationScheme scheme, HttpContext context)
    {
        _scheme = scheme;
        _context = context;
        return Task.CompletedTask;
    }

    public Task<bool> HandleRequestAsync() => gate.HandleAsync(_context);

    public Task<AuthenticateResult> AuthenticateAsync()
    {
        var connection = _context.Features.Get<MeshConnection>();
        return Task.FromResult(connection is null
            ? AuthenticateResult.NoResult()
            : AuthenticateResult.Success(new AuthenticationTicket(connection.Principal ??= MeshClaims.CreatePrincipal(connection.SpiffeId), _scheme.Name)));
    }

    public Task ChallengeAsync(AuthenticationProperties? properties) =>
        new MeshRefusal(
            StatusCodes.Status403Forbidden,
            MeshCallReasons.MeshCallerRequired,
            "This endpoint only serves mesh callers, and this request has no mesh identity (it did not arrive on the mesh endpoint with a mesh client certificate).",
            null).WriteAsync(_context);

    public Task ForbidAsync(AuthenticationProperties? properties)
    {
        var caller = _context.Features.Get<IMeshPeerFeature>()?.SpiffeId.Value ?? "an unknown caller";
        var allowed = _context.Items.TryGetValue(MeshCallerAuthorizationHandler.AllowedKey, out var list) ? list as string : null;
        return new MeshRefusal(
            StatusCodes.Status403Forbidden,
            MeshCallReasons.MeshCallerNotAllowed,
            $"{caller} may not call this endpoint" + (allowed is null ? "." : $"; allowed callers: {allowed}."),
            null).WriteAsync(_context);
    }
}
