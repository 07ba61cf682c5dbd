using System.Security.Claims;
using MeshKit.Identity;

namespace MeshKit.Authorization;

/// <summary>Claim types of the <c>Mesh</c> authentication scheme.</summary>
public static class MeshClaims
{
    /// <summary>The caller's SPIFFE ID (also the name identifier).</summary>
    public const string SpiffeId = "mesh:spiffe_id";

    /// <summary>The caller's namespace.</summary>
    public const string Namespace = "mesh:namespace";

    /// <summary>The caller's service name (also the name).</summary>
    public const string Service = "mesh:service";

    internal static ClaimsPrincipal CreatePrincipal(SpiffeId id)
    {
        const string Issuer = "MeshKit";
        var identity = new ClaimsIdentity(
            [
                new Claim(ClaimTypes.NameIdentifier, id.Value, ClaimValueTypes.String, Issuer),
                new Claim(SpiffeId, id.Value, ClaimValueTypes.String, Issuer),
                new Claim(Namespace, id.Namespace, ClaimValueTypes.String, Issuer),
                new Claim(Service, id.Service, ClaimValueTypes.String, Issuer),
            ],
            authenticationType: MeshAuthenticationDefaults.AuthenticationScheme,
            nameType: Service,
            roleType: ClaimTypes.Role);
        return new ClaimsPrincipal(identity);
    }
}
