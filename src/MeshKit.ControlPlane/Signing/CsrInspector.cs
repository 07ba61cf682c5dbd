using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MeshKit.Identity;

namespace MeshKit.ControlPlane.Signing;

/// <summary>A CSR that parsed, verified and names exactly one strictly valid SPIFFE ID.</summary>
/// <param name="SpiffeId">The identity the CSR asks for.</param>
/// <param name="PublicKey">The key to certify.</param>
internal sealed record InspectedCsr(SpiffeId SpiffeId, PublicKey PublicKey);

/// <summary>A refusal of a sign request, with the HTTP status, a machine-readable reason and a human-readable detail.</summary>
internal sealed record SignRefusal(int Status, string Reason, string Detail);

/// <summary>
/// Reads a PKCS#10 CSR: checks its encoding, its signature, its key type and size, and the identity it requests.
/// Only the requested URI SAN is read; every other requested extension is ignored, the CA sets its own.
/// </summary>
internal static class CsrInspector
{
    private const string EcPublicKeyOid = "1.2.840.10045.2.1";
    private const string RsaOid = "1.2.840.113549.1.1.1";
    private const string NistP256Oid = "1.2.840.10045.3.1.7";
    private const int MinimumRsaBits = 2048;
    private const int MaximumRsaBits = 8192;

    public static bool TryInspect(string? pem, out InspectedCsr? csr, out SignRefusal? refusal)
    {
        csr = null;
        if (string.IsNullOrWhiteSpace(pem))
        {
            refusal = BadRequest("csr-missing", "The body has no 'csr' field; send {\"csr\": \"<PEM PKCS#10>\"}.");
            return false;
        }

        if (!PemEncoding.TryFind(pem, out var fields) || !IsCsrLabel(pem.AsSpan()[fields.Label]))
        {
            refusal = BadRequest("csr-malformed", "The 'csr' field is not a PEM 'CERTIFICATE REQUEST'.");
            return false;
        }

        CertificateRequest request;
        try
        {
            // First parse without checking the signature, so an encoding error and a bad signature are told apart.
            request = CertificateRequest.LoadSigningRequestPem(
                pem,
                HashAlgorithmName.SHA256,
                CertificateRequestLoadOptions.SkipSignatureValidation | CertificateRequestLoadOptions.UnsafeLoadCertificateExtensions);
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException or FormatException)
        {
            refusal = BadRequest("csr-malformed", "The CSR's PEM or DER encoding is not valid PKCS#10.");
            return false;
        }

        var keyRefusal = CheckKey(request.PublicKey);
        if (keyRefusal is not null)
        {
            refusal = keyRefusal;
            return false;
        }

        try
        {
            CertificateRequest.LoadSigningRequestPem(pem, HashAlgorithmName.SHA256, CertificateRequestLoadOptions.Default);
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException or FormatException)
        {
            refusal = BadRequest("csr-signature-invalid", "The CSR's signature does not verify with its own public key.");
            return false;
        }

        var uris = new List<string>();
        foreach (var extension in request.CertificateExtensions)
        {
            if (extension.Oid?.Value != SubjectAlternativeNames.ExtensionOid)
            {
                continue;
            }

            try
            {
                uris.AddRange(SubjectAlternativeNames.ReadUris(extension.RawData));
            }
            catch (CryptographicException ex)
            {
                refusal = BadRequest("csr-san-malformed", ex.Message);
                return false;
            }
        }

        if (uris.Count != 1)
        {
            refusal = BadRequest(
                "csr-identity-count",
                $"The CSR must request exactly one identity as a URI SAN 'spiffe://<trust-domain>/ns/<namespace>/svc/<service>'; it requests {uris.Count}.");
            return false;
        }

        if (!SpiffeId.TryParse(uris[0], out var id, out var error))
        {
            refusal = BadRequest("spiffe-id-invalid", $"The requested SPIFFE ID is not valid: {error}");
            return false;
        }

        csr = new InspectedCsr(id, request.PublicKey);
        refusal = null;
        return true;
    }

    private static bool IsCsrLabel(ReadOnlySpan<char> label) =>
        label.SequenceEqual("CERTIFICATE REQUEST") || label.SequenceEqual("NEW CERTIFICATE REQUEST");

    private static SignRefusal? CheckKey(PublicKey key)
    {
        switch (key.Oid.Value)
        {
            case EcPublicKeyOid:
                // The algorithm parameters name the curve.
                var parameters = key.EncodedParameters?.RawData ?? [];
                string? curve = null;
                try
                {
                    curve = new System.Formats.Asn1.AsnReader(parameters, System.Formats.Asn1.AsnEncodingRules.DER).ReadObjectIdentifier();
                }
                catch (System.Formats.Asn1.AsnContentException)
                {
                }

                return curve == NistP256Oid
                    ? null
                    : BadRequest("csr-key-unsupported", "The CSR's EC key is not on curve P-256; use ECDSA P-256 or RSA of at least 2048 bits.");
            case RsaOid:
                int bits;
                try
                {
                    using var rsa = key.GetRSAPublicKey();
                    bits = rsa?.KeySize ?? 0;
                }
                catch (CryptographicException)
                {
                    bits = 0;
                }

                return bits is >= MinimumRsaBits and <= MaximumRsaBits
                    ? null
                    : BadRequest("csr-key-unsupported", $"The CSR's RSA key has {bits} bits; use RSA of {MinimumRsaBits} to {MaximumRsaBits} bits or ECDSA P-256.");
            default:
                return BadRequest("csr-key-unsupported", $"The CSR's key algorithm {key.Oid.Value} is not supported; use ECDSA P-256 or RSA of at least 2048 bits.");
        }
    }

    private static SignRefusal BadRequest(string reason, string detail) => new(StatusCodes.Status400BadRequest, reason, detail);
}
