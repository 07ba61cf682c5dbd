using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MeshKit.Identity;

/// <summary>The outcome of validating a peer's X.509-SVID.</summary>
/// <param name="SpiffeId">The peer's identity, when accepted.</param>
/// <param name="Rejection">Why it was refused, or <see cref="SvidRejection.None"/>.</param>
/// <param name="Detail">A human-readable explanation of a refusal.</param>
public readonly record struct SvidValidationResult(SpiffeId? SpiffeId, SvidRejection Rejection, string? Detail)
{
    /// <summary>Gets whether the certificate was accepted.</summary>
    public bool IsValid => Rejection == SvidRejection.None && SpiffeId is not null;

    internal static SvidValidationResult Accept(SpiffeId id) => new(id, SvidRejection.None, null);

    /// <summary>Creates a refusal.</summary>
    /// <param name="rejection">Why.</param>
    /// <param name="detail">A human-readable explanation.</param>
    /// <returns>The refusal.</returns>
    public static SvidValidationResult Reject(SvidRejection rejection, string detail) => new(null, rejection, detail);
}
