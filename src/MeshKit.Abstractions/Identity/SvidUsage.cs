using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MeshKit.Identity;

/// <summary>Which side of a TLS connection an SVID is checked for.</summary>
public enum SvidUsage
{
    /// <summary>The SVID authenticates a server (serverAuth EKU).</summary>
    Server,

    /// <summary>The SVID authenticates a client (clientAuth EKU).</summary>
    Client,
}
