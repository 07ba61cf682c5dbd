using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MeshKit.Identity;

/// <summary>Why a peer certificate was refused as a mesh identity.</summary>
public enum SvidRejection
{
    /// <summary>Accepted.</summary>
    None = 0,

    /// <summary>The peer presented no certificate.</summary>
    NoCertificate,

    /// <summary>The chain does not lead to a root of the trust bundle (for example a foreign CA).</summary>
    UntrustedChain,

    /// <summary>The certificate is past its NotAfter.</summary>
    Expired,

    /// <summary>The certificate is before its NotBefore.</summary>
    NotYetValid,

    /// <summary>The certificate is not an X.509-SVID leaf (a CA certificate, wrong key usage, no or several URI SANs).</summary>
    NotAnSvid,

    /// <summary>The URI SAN is not a strictly valid SPIFFE ID.</summary>
    InvalidSpiffeId,

    /// <summary>The SPIFFE ID belongs to another trust domain.</summary>
    WrongTrustDomain,

    /// <summary>The SPIFFE ID is valid but not the one expected for this connection.</summary>
    UnexpectedIdentity,

    /// <summary>The control service revoked the SPIFFE ID: its certificates are refused even before they expire.</summary>
    Revoked,
}
