using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MeshKit.Identity;

/// <summary>
/// Reads URI entries of a subjectAltName extension, which .NET's
/// <see cref="X509SubjectAlternativeNameExtension"/> does not enumerate.
/// </summary>
public static class SubjectAlternativeNames
{
    /// <summary>The OID of the subjectAltName extension.</summary>
    public const string ExtensionOid = "2.5.29.17";

    // GeneralName ::= CHOICE { ..., uniformResourceIdentifier [6] IA5String, ... }
    private static readonly Asn1Tag UriTag = new(TagClass.ContextSpecific, 6);
    private static readonly Asn1Tag DnsTag = new(TagClass.ContextSpecific, 2);
    private static readonly Asn1Tag IpTag = new(TagClass.ContextSpecific, 7);

    /// <summary>The most URI entries read before an extension is refused as hostile.</summary>
    public const int MaxEntries = 64;

    /// <summary>Reads the URI SANs of a certificate.</summary>
    /// <param name="certificate">The certificate.</param>
    /// <returns>The URIs, as written (no normalisation); empty when the certificate has no SAN extension.</returns>
    /// <exception cref="CryptographicException">The extension is malformed.</exception>
    public static IReadOnlyList<string> GetUris(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        foreach (var extension in certificate.Extensions)
        {
            if (extension.Oid?.Value == ExtensionOid)
            {
                return ReadUris(extension.RawData);
            }
        }

        return [];
    }

    /// <summary>Reads the URI entries of a DER-encoded subjectAltName extension value.</summary>
    /// <param name="extensionValue">The extension's value (a GeneralNames sequence).</param>
    /// <returns>The URIs, as written.</returns>
    /// <exception cref="CryptographicException">The value is malformed or holds more than <see cref="MaxEntries"/> entries.</exception>
    public static IReadOnlyList<string> ReadUris(ReadOnlyMemory<byte> extensionValue)
    {
        try
        {
            var reader = new AsnReader(extensionValue, AsnEncodingRules.DER);
            var names = reader.ReadSequence();
            reader.ThrowIfNotEmpty();
            var uris = new List<string>(1);
            var entries = 0;
            while (names.HasData)
            {
                if (++entries > MaxEntries)
                {
                    throw new CryptographicException($"The subjectAltName extension holds more than {MaxEntries} names.");
                }

                var tag = names.PeekTag();
                if (tag.HasSameClassAndValue(UriTag))
                {
                    uris.Add(names.ReadCharacterString(UniversalTagNumber.IA5String, UriTag));
                }
                else
                {
                    names.ReadEncodedValue();
                }
            }

            return uris;
        }
        catch (AsnContentException ex)
        {
            throw new CryptographicException("The subjectAltName extension is malformed.", ex);
        }
    }

    /// <summary>Builds a subjectAltName extension holding exactly one URI, and optionally DNS names and IP addresses.</summary>
    /// <param name="uri">The URI (a SPIFFE ID), written as given.</param>
    /// <param name="dnsNames">DNS names to add.</param>
    /// <param name="ipAddresses">IP addresses to add.</param>
    /// <param name="critical">Whether the extension is critical (required when the subject is empty).</param>
    /// <returns>The extension.</returns>
    public static X509Extension Create(
        string uri,
        IEnumerable<string>? dnsNames = null,
        IEnumerable<System.Net.IPAddress>? ipAddresses = null,
        bool critical = false)
    {
        ArgumentNullException.ThrowIfNull(uri);
        var writer = new AsnWriter(AsnEncodingRules.DER);
        using (writer.PushSequence())
        {
            foreach (var dns in dnsNames ?? [])
            {
                writer.WriteCharacterString(UniversalTagNumber.IA5String, dns, DnsTag);
            }

            writer.WriteCharacterString(UniversalTagNumber.IA5String, uri, UriTag);
            foreach (var ip in ipAddresses ?? [])
            {
                writer.WriteOctetString(ip.GetAddressBytes(), IpTag);
            }
        }

        return new X509Extension(ExtensionOid, writer.Encode(), critical);
    }
}
