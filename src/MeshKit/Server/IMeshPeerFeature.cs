using System.Security.Cryptography.X509Certificates;
using MeshKit.Identity;

namespace MeshKit.Server;

/// <summary>
/// The mesh identity of the caller of a request on the mesh endpoint, validated during the TLS handshake. Absent on
/// public endpoints. Read it with <c>HttpContext.Features.Get&lt;IMeshPeerFeature&gt;()</c>, or authenticate with the
/// <c>Mesh</c> scheme; neither touches <c>HttpContext.User</c>.
/// </summary>
public interface IMeshPeerFeature
{
    /// <summary>Gets the caller's SPIFFE ID.</summary>
    SpiffeId SpiffeId { get; }

    /// <summary>Gets the caller's namespace.</summary>
    string Namespace => SpiffeId.Namespace;

    /// <summary>Gets the caller's service name.</summary>
    string Service => SpiffeId.Service;

    /// <summary>Gets the caller's certificate.</summary>
    X509Certificate2 Certificate { get; }

    /// <summary>Gets when the caller's certificate expires; requests after that are refused and the connection closed.</summary>
    DateTimeOffset NotAfter { get; }
}
