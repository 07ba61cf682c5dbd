using System.Security.Claims;
using System.Security.Cryptography.X509Certificates;
using MeshKit.Identity;

namespace MeshKit.Server;

/// <summary>
/// What the handshake of one mesh-endpoint connection established. Set on the connection's features, which every
/// request on the connection sees, so the request path allocates nothing for the caller's identity.
/// </summary>
internal sealed class MeshConnection(SpiffeId peer, X509Certificate2 certificate, DateTimeOffset serverNotAfter, string serverSerial) : IMeshPeerFeature
{
    private ClaimsPrincipal? _principal;

    public SpiffeId SpiffeId { get; } = peer;

    public X509Certificate2 Certificate { get; } = certificate;

    public DateTimeOffset NotAfter { get; } = new(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero);

    /// <summary>Gets when the certificate this server presented on the connection expires.</summary>
    public DateTimeOffset ServerNotAfter { get; } = serverNotAfter;

    /// <summary>Gets the serial number of the certificate this server presented on the connection.</summary>
    public string ServerSerial { get; } = serverSerial;

    /// <summary>Gets the principal of the <c>Mesh</c> authentication scheme, built once per connection.</summary>
    public ClaimsPrincipal Principal => _principal ??= MeshClaims.CreatePrincipal(SpiffeId);
}

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
            authenticationType: Authorization.MeshAuthenticationDefaults.AuthenticationScheme,
            nameType: Service,
            roleType: ClaimTypes.Role);
        return new ClaimsPrincipal(identity);
    }
}
