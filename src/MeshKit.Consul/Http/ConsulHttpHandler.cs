using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;

namespace MeshKit.Consul;

/// <summary>
/// Builds the HTTP handler the Consul client owns. It is deliberately not taken from <c>IHttpClientFactory</c>: mesh
/// handlers (service discovery, mTLS, retries) are added to every factory client, and Consul must be reached directly.
/// </summary>
internal static class ConsulHttpHandler
{
    private const string TlsKey = ConsulOptions.SectionPath + ":Tls";

    public static SocketsHttpHandler Create(ConsulOptions options)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = options.RequestTimeout,
            // Blocking queries hold a connection each for up to Wait; recycle connections so DNS changes are seen.
            PooledConnectionLifetime = TimeSpan.FromMinutes(10),
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(1),
            UseCookies = false,
            AllowAutoRedirect = false,
        };

        if (options.Address.Scheme != Uri.UriSchemeHttps)
        {
            return handler;
        }

        var ssl = new SslClientAuthenticationOptions();
        if (!string.IsNullOrEmpty(options.Tls.CaFile))
        {
            var roots = LoadRoots(options.Tls.CaFile);
            var policy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                RevocationMode = X509RevocationMode.NoCheck,
                DisableCertificateDownloads = true,
            };
            policy.CustomTrustStore.AddRange(roots);
            ssl.CertificateChainPolicy = policy;
        }

        if (!string.IsNullOrEmpty(options.Tls.ClientCertificateFile))
        {
            var certificate = LoadClientCertificate(options.Tls.ClientCertificateFile, options.Tls.ClientKeyFile);
            ssl.ClientCertificates = [certificate];
            ssl.LocalCertificateSelectionCallback = (_, _, _, _, _) => certificate;
        }

        handler.SslOptions = ssl;
        return handler;
    }

    private static X509Certificate2Collection LoadRoots(string path)
    {
        var roots = new X509Certificate2Collection();
        try
        {
            roots.ImportFromPemFile(path);
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw Invalid($"{TlsKey}:CaFile '{path}' could not be read as PEM certificates ({ex.Message}); give the PEM file of the CA that signs the Consul agent's certificate.");
        }

        if (roots.Count == 0)
        {
            throw Invalid($"{TlsKey}:CaFile '{path}' holds no PEM certificate; give the PEM file of the CA that signs the Consul agent's certificate.");
        }

        return roots;
    }

    private static X509Certificate2 LoadClientCertificate(string certificatePath, string? keyPath)
    {
        try
        {
            var certificate = X509Certificate2.CreateFromPemFile(certificatePath, string.IsNullOrEmpty(keyPath) ? null : keyPath);
            if (!OperatingSystem.IsWindows())
            {
                return certificate;
            }

            // SChannel cannot use an ephemeral key for client authentication; a PKCS#12 round trip gives it a usable one.
            using (certificate)
            {
                return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null);
            }
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw Invalid($"{TlsKey}:ClientCertificateFile '{certificatePath}' could not be loaded with its private key ({ex.Message}); give a PEM certificate with its key in the same file or in {TlsKey}:ClientKeyFile.");
        }
    }

    private static OptionsValidationException Invalid(string message) =>
        new(Options.DefaultName, typeof(ConsulOptions), [message]);
}
