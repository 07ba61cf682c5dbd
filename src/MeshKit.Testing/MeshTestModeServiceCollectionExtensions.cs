using MeshKit;
using MeshKit.Identity;
using MeshKit.Testing;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Test mode for a host that calls <c>builder.AddMesh()</c>: <c>services.AddMeshTestMode(ca)</c>.</summary>
public static class MeshTestModeServiceCollectionExtensions
{
    /// <summary>
    /// Puts the host in test mode: its workload certificates come from <paramref name="authority"/>, in memory, instead of
    /// the control service, so it needs no <c>Mesh:ControlPlane:Address</c>, join token or trust-bundle file, and no
    /// control-service process runs. Its trust bundle is the CA's root. Certificates are renewed as with the control
    /// service (at <c>Mesh:Identity:RenewalFraction</c> of their lifetime). Everything else of <c>AddMesh()</c> is as in
    /// production: the mesh endpoint with mTLS, mesh clients, discovery, local policy, authorization, telemetry. There is no
    /// control channel: no central policy, no revocations, no trust-bundle changes. Call it before or after
    /// <c>AddMesh()</c>, for example in <c>WebApplicationFactory</c>'s <c>ConfigureServices</c>. The host's
    /// <c>Mesh:TrustDomain</c> must be the CA's, or it does not start.
    /// </summary>
    /// <param name="services">The host's services.</param>
    /// <param name="authority">The CA shared by the apps of the test.</param>
    /// <returns>The services.</returns>
    public static IServiceCollection AddMeshTestMode(this IServiceCollection services, MeshTestCertificateAuthority authority)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(authority);

        // A second call with another CA replaces the first.
        services.RemoveAll<InProcessCertificateIssuer>();
        services.AddSingleton<InProcessCertificateIssuer>(sp => new MeshTestModeIssuer(authority, sp.GetRequiredService<IOptions<MeshOptions>>()));
        services.AddSingleton<IValidateOptions<MeshOptions>>(new MeshTestModeTrustDomainCheck(authority));
        return services;
    }
}
