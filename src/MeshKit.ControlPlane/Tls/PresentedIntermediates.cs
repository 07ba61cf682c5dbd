using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections.Features;

namespace MeshKit.ControlPlane.Tls;

/// <summary>
/// The intermediates a client presented with its certificate in the TLS handshake. Kestrel keeps only the leaf, but a
/// workload whose certificate another replica issued (with that replica's own intermediate under the shared root) must be
/// validated through the intermediate it sent: they are kept per connection, at most <see cref="Limit"/>, and used only as
/// untrusted chain material (trust still comes from the bundle's roots alone).
/// </summary>
internal static class PresentedIntermediates
{
    /// <summary>At most this many are kept per connection; a longer chain is not a mesh chain (root → intermediate → leaf).</summary>
    public const int Limit = 4;

    private static readonly object Key = typeof(PresentedIntermediates);

    /// <summary>Keeps what the client sent beside its certificate (called from the handshake's validation callback).</summary>
    public static void Capture(IDictionary<object, object?> connectionItems, X509Chain? chain)
    {
        if (chain is null || chain.ChainPolicy.ExtraStore.Count == 0)
        {
            return;
        }

        var kept = new X509Certificate2Collection();
        foreach (var certificate in chain.ChainPolicy.ExtraStore)
        {
            if (kept.Count == Limit)
            {
                break;
            }

            // A copy: the handshake's chain and its certificates are disposed once validation is over.
            kept.Add(X509CertificateLoader.LoadCertificate(certificate.RawData));
        }

        lock (connectionItems)
        {
            connectionItems[Key] = kept;
        }
    }

    /// <summary>The chain material to validate a client of this connection with: this replica's own chain and what the client sent.</summary>
    public static X509Certificate2Collection For(HttpContext http, CertificateAuthority.CertificateAuthority ca)
    {
        var extra = new X509Certificate2Collection();
        foreach (var certificate in ca.ActiveSigner.Chain)
        {
            extra.Add(certificate);
        }

        if (http.Features.Get<IConnectionItemsFeature>()?.Items is { } items)
        {
            lock (items)
            {
                if (items.TryGetValue(Key, out var value) && value is X509Certificate2Collection presented)
                {
                    extra.AddRange(presented);
                }
            }
        }

        return extra;
    }
}
