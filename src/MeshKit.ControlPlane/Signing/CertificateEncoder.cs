using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MeshKit.ControlPlane.Signing;

/// <summary>
/// Encodes and signs a certificate from a <see cref="CertificateRequest"/> the way <see cref="CertificateRequest.Create(X500DistinguishedName, X509SignatureGenerator, DateTimeOffset, DateTimeOffset, ReadOnlySpan{byte})"/>
/// does, byte for byte (a test holds them together), but returns the DER instead of a loaded <see cref="X509Certificate2"/>:
/// with OpenSSL 3.0, loading a certificate costs five times its ECDSA signature (about 100 µs, mostly decoding its public
/// key), and the sign endpoint needs only the PEM and a few fields it already knows.
/// </summary>
internal static class CertificateEncoder
{
    /// <summary>Gets whether <see cref="Encode"/> can encode a certificate over <paramref name="publicKey"/> (its algorithm parameters are present, as for EC and RSA keys).</summary>
    public static bool CanEncode(PublicKey publicKey) => publicKey.EncodedParameters is { RawData.Length: > 0 };

    /// <summary>Encodes the certificate and signs it.</summary>
    /// <param name="request">The subject, its key, the extensions and the hash algorithm.</param>
    /// <param name="issuer">The issuer's name.</param>
    /// <param name="generator">The issuer's signature generator.</param>
    /// <param name="notBefore">The start of validity (encoded to the second, as .NET does).</param>
    /// <param name="notAfter">The end of validity.</param>
    /// <param name="serialNumber">A positive big-endian serial number without a redundant leading byte.</param>
    /// <returns>The certificate's DER.</returns>
    public static byte[] Encode(CertificateRequest request, X500DistinguishedName issuer, X509SignatureGenerator generator, DateTimeOffset notBefore, DateTimeOffset notAfter, byte[] serialNumber)
    {
        // The same argument checks as CertificateRequest.Create.
        if (notAfter < notBefore)
        {
            throw new ArgumentException("The provided notBefore value is later than the notAfter value.", nameof(notAfter));
        }

        if (serialNumber.Length == 0 || (serialNumber[0] & 0x80) != 0 || (serialNumber.Length > 1 && serialNumber[0] == 0 && (serialNumber[1] & 0x80) == 0))
        {
            throw new ArgumentException("The serial number must be positive, without a redundant leading zero.", nameof(serialNumber));
        }

        var key = request.PublicKey;
        var signatureAlgorithm = generator.GetSignatureAlgorithmIdentifier(request.HashAlgorithm);
        var writer = new AsnWriter(AsnEncodingRules.DER, initialCapacity: 1024);
        using (writer.PushSequence())
        {
            using (writer.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0)))
            {
                writer.WriteInteger(2); // v3
            }

            writer.WriteInteger(serialNumber);
            writer.WriteEncodedValue(signatureAlgorithm);
            writer.WriteEncodedValue(issuer.RawData);
            using (writer.PushSequence())
            {
                WriteTime(writer, notBefore);
                WriteTime(writer, notAfter);
            }

            writer.WriteEncodedValue(request.SubjectName.RawData);
            using (writer.PushSequence())
            {
                using (writer.PushSequence())
                {
                    writer.WriteObjectIdentifier(key.Oid.Value!);
                    writer.WriteEncodedValue(key.EncodedParameters!.RawData);
                }

                writer.WriteBitString(key.EncodedKeyValue.RawData);
            }

            if (request.CertificateExtensions.Count > 0)
            {
                var seen = new HashSet<string>(StringComparer.Ordinal);
                using (writer.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 3)))
                using (writer.PushSequence())
                {
                    foreach (var extension in request.CertificateExtensions)
                    {
                        if (!seen.Add(extension.Oid!.Value!))
                        {
                            throw new InvalidOperationException($"An X509Extension with OID '{extension.Oid.Value}' has already been specified.");
                        }

                        using (writer.PushSequence())
                        {
                            writer.WriteObjectIdentifier(extension.Oid.Value!);
                            if (extension.Critical)
                            {
                                writer.WriteBoolean(true);
                            }

                            writer.WriteOctetString(extension.RawData);
                        }
                    }
                }
            }
        }

        var tbs = writer.Encode();
        var signature = generator.SignData(tbs, request.HashAlgorithm);
        writer.Reset();
        using (writer.PushSequence())
        {
            writer.WriteEncodedValue(tbs);
            writer.WriteEncodedValue(signatureAlgorithm);
            writer.WriteBitString(signature);
        }

        return writer.Encode();
    }

    /// <summary>Gets the value a time has once encoded: whole seconds, UTC.</summary>
    public static DateTimeOffset Encoded(DateTimeOffset time) =>
        new(time.UtcTicks - (time.UtcTicks % TimeSpan.TicksPerSecond), TimeSpan.Zero);

    /// <summary>Gets the serial number as <see cref="X509Certificate2.SerialNumber"/> shows it.</summary>
    public static string SerialNumberText(byte[] serialNumber) => Convert.ToHexString(serialNumber);

    // RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, whole seconds (as .NET writes them).
    private static void WriteTime(AsnWriter writer, DateTimeOffset time)
    {
        var utc = time.ToUniversalTime();
        if (utc.Year is >= 1950 and < 2050)
        {
            writer.WriteUtcTime(utc, 2049);
        }
        else
        {
            writer.WriteGeneralizedTime(utc, omitFractionalSeconds: true);
        }
    }
}
