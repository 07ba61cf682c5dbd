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
    public SpiffeId SpiffeId { get; } = peer;

    public X509Certificate2 Certificate { get; } = certificate;

    public DateTimeOffset NotAfter { get; } = new(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero);

    /// <summary>Gets when the certificate this server presented on the connection expires.</summary>
    public DateTimeOffset ServerNotAfter { get; } = serverNotAfter;

    /// <summary>Gets the serial number of the certificate this server presented on the connection.</summary>
    public string ServerSerial { get; } = serverSerial;

    /// <summary>Gets or sets the principal of the <c>Mesh</c> authentication scheme, built once per connection by the scheme's handler.</summary>
    internal ClaimsPrincipal? Principal { get; set; }
}
