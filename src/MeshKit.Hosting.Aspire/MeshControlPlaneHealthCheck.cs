using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Aspire.Hosting.ApplicationModel;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace MeshKit.Hosting.Aspire;

/// <summary>
/// Asks the control service's <c>/healthz</c> over HTTPS, trusting only the mesh's development root: healthy once it
/// answers 200 with a certificate issued under that root (directly, or through the intermediate a replica sends).
/// </summary>
internal sealed class MeshControlPlaneHealthCheck(EndpointReference endpoint, X509Certificate2 root) : IHealthCheck, IDisposable
{
    private readonly HttpClient _http = new(new SocketsHttpHandler
    {
        ConnectTimeout = TimeSpan.FromSeconds(2),
        PooledConnectionLifetime = TimeSpan.FromMinutes(1),
        SslOptions = new SslClientAuthenticationOptions
        {
            RemoteCertificateValidationCallback = (_, certificate, chain, _) => ChainsTo(certificate, chain, root),
        },
    })
    {
        Timeout = TimeSpan.FromSeconds(3),
    };

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (!endpoint.IsAllocated)
        {
            return HealthCheckResult.Unhealthy("The control service's endpoint has no port yet.");
        }

        try
        {
            using var response = await _http.GetAsync(new Uri($"https://127.0.0.1:{endpoint.Port}/healthz"), cancellationToken).ConfigureAwait(false);
            return response.IsSuccessStatusCode
                ? HealthCheckResult.Healthy()
                : HealthCheckResult.Unhealthy($"The control service answered /healthz with {(int)response.StatusCode}.");
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            return HealthCheckResult.Unhealthy("The control service does not answer /healthz yet.", ex);
        }
    }

    public void Dispose() => _http.Dispose();

    private static bool ChainsTo(X509Certificate? presented, X509Chain? sent, X509Certificate2 root)
    {
        if (presented is null)
        {
            return false;
        }

        using var leaf = X509CertificateLoader.LoadCertificate(presented.GetRawCertData());
        using var chain = new X509Chain();

        // A replica's certificate comes from its intermediate, which it sends with its own; the trust is the root alone.
        if (sent is not null)
        {
            chain.ChainPolicy.ExtraStore.AddRange(sent.ChainPolicy.ExtraStore);
            foreach (var element in sent.ChainElements)
            {
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(root);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.DisableCertificateDownloads = true;
        return chain.Build(leaf);
    }
}
