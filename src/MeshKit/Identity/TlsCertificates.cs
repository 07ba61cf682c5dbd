using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MeshKit.Identity;

/// <summary>Attaches in-memory keys to certificates in a form every TLS stack accepts.</summary>
internal static class TlsCertificates
{
    /// <summary>
    /// Returns <paramref name="certificate"/> with <paramref name="key"/> attached. Windows' SChannel refuses ephemeral
    /// keys, so there the pair goes through PKCS#12 in memory; elsewhere the key is attached directly.
    /// </summary>
    public static X509Certificate2 WithKey(X509Certificate2 certificate, ECDsa key)
    {
        var withKey = certificate.CopyWithPrivateKey(key);
        if (!OperatingSystem.IsWindows())
        {
            return withKey;
        }

        using (withKey)
        {
            return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), password: null);
        }
    }
}
