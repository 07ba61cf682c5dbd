using MeshKit.Identity;
using Microsoft.Extensions.Options;

namespace MeshKit.Testing;

/// <summary>
/// The in-process issuer of a host in test mode: the host's renewal loop (the same as with the control service) sends its
/// CSR here instead of to the control service, first certificate and renewals alike; no join token is involved.
/// </summary>
internal sealed class MeshTestModeIssuer(MeshTestCertificateAuthority authority, IOptions<MeshOptions> options) : InProcessCertificateIssuer
{
    public override string Describe() => $"the in-memory test CA of trust domain '{authority.TrustDomain}' (MeshKit.Testing)";

    public override Task<IssuedWorkloadCertificate> SignAsync(string csrPem, bool useJoinToken, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();

        // Read here, not when made: the options' validator asks whether test mode is on while the options are being made.
        var service = options.Value.Service;
        var id = SpiffeId.Create(options.Value.TrustDomain, service.Namespace, service.Name!);
        var chain = authority.SignCsr(csrPem, id);
        return Task.FromResult(new IssuedWorkloadCertificate(chain, authority.TrustBundlePem));
    }
}

/// <summary>A host in test mode must have the CA's trust domain: otherwise its own certificate could never validate.</summary>
internal sealed class MeshTestModeTrustDomainCheck(MeshTestCertificateAuthority authority) : IValidateOptions<MeshOptions>
{
    public ValidateOptionsResult Validate(string? name, MeshOptions options) =>
        string.Equals(options.TrustDomain, authority.TrustDomain, StringComparison.Ordinal)
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail(
                $"{MeshOptions.SectionName}:TrustDomain is '{options.TrustDomain}' but the test CA given to AddMeshTestMode issues for '{authority.TrustDomain}': "
                + $"create it with new MeshTestCertificateAuthority(new MeshTestCertificateAuthorityOptions {{ TrustDomain = \"{options.TrustDomain}\" }}), or set {MeshOptions.SectionName}:TrustDomain to '{authority.TrustDomain}'.");
}
