using MeshKit.ControlPlane.Coordination;
using MeshKit.ControlPlane.Tokens;

namespace MeshKit.ControlPlane.Workloads;

/// <summary>The admin API's view of workloads and tokens.</summary>
internal static class WorkloadEndpoints
{
    public static IEndpointRouteBuilder MapWorkloadAdminApi(this IEndpointRouteBuilder endpoints)
    {
        var admin = endpoints.MapGroup("/v1").AddEndpointFilter<AdminEndpointFilter>();
        admin.MapGet("/workloads", (WorkloadRegistry workloads, CertificateAuthority.CertificateAuthority ca) =>
            Results.Json(new { trustDomain = ca.TrustDomain, bundleVersion = ca.Bundle.Version, activeIssuer = ca.ActiveSigner.Certificate.Subject, workloads = workloads.List() }));
        admin.MapGet("/tokens", (JoinTokenRegistry tokens) =>
            Results.Json(tokens.Names.Select(n => new { name = n, revoked = tokens.IsRevoked(n) })));
        admin.MapPost("/tokens/{name}/revoke", (string name, JoinTokenRegistry tokens, CancellationToken cancellationToken) => Shared(async () =>
            await tokens.RevokeAsync(name, cancellationToken).ConfigureAwait(false)
                ? Results.Json(new { name, revoked = true })
                : Problems.Refuse(StatusCodes.Status404NotFound, "token-not-found", $"No join token is named '{name}'; GET /v1/tokens lists them.")));
        // CA rotation, step by step (see docs/operations.md): add a root, switch issuance to it, remove the old one.
        // Each step runs on the leading replica only; a follower refuses, naming the leader.
        admin.MapGet("/ca/roots", (CertificateAuthority.CertificateAuthority ca) => Results.Json(RootsView(ca)));
        admin.MapPost("/ca/roots", (CertificateAuthority.CertificateAuthority ca, ReplicaLeadership leadership) =>
            CaChange(ca, leadership, "CA rotation step 1 (add a root)", () => ca.AddRoot()));
        admin.MapPost("/ca/roots/{id}/activate", (string id, CertificateAuthority.CertificateAuthority ca, ReplicaLeadership leadership) =>
            CaChange(ca, leadership, $"CA rotation step 2 (activate root {id})", () => ca.Activate(id)));
        admin.MapDelete("/ca/roots/{id}", (string id, CertificateAuthority.CertificateAuthority ca, ReplicaLeadership leadership) =>
            CaChange(ca, leadership, $"CA rotation step 3 (remove root {id})", () => ca.RemoveRoot(id)));
        admin.MapGet("/identities/revoked", (IdentityRevocations revocations) => Results.Json(revocations.All));
        admin.MapPost("/identities/revoke", (RevokeIdentityRequest body, IdentityRevocations revocations, CancellationToken cancellationToken) =>
        {
            if (!MeshKit.Identity.SpiffeId.TryParse(body.SpiffeId, out var id, out var error))
            {
                return Task.FromResult(Problems.Refuse(StatusCodes.Status400BadRequest, "spiffe-id-invalid", $"'spiffeId' is not a valid SPIFFE ID: {error}"));
            }

            var reason = string.IsNullOrWhiteSpace(body.Reason) ? "revoked by an operator" : body.Reason.Trim();
            return Shared(async () =>
            {
                await revocations.RevokeAsync(id.Value, reason, cancellationToken).ConfigureAwait(false);
                return Results.Json(new { spiffeId = id.Value, revoked = true });
            });
        });
        admin.MapPost("/identities/restore", (RevokeIdentityRequest body, IdentityRevocations revocations, CancellationToken cancellationToken) => Shared(async () =>
            await revocations.RestoreAsync(body.SpiffeId ?? string.Empty, cancellationToken).ConfigureAwait(false)
                ? Results.Json(new { spiffeId = body.SpiffeId, revoked = false })
                : Problems.Refuse(StatusCodes.Status404NotFound, "identity-not-revoked", $"'{body.SpiffeId}' is not revoked.")));
        return endpoints;
    }

    /// <summary>A change to shared state: when the shared store cannot be written, 503 says so and nothing changed.</summary>
    private static async Task<IResult> Shared(Func<Task<IResult>> change)
    {
        try
        {
            return await change().ConfigureAwait(false);
        }
        catch (Storage.RevocationStoreUnavailableException ex)
        {
            return Problems.Refuse(StatusCodes.Status503ServiceUnavailable, "revocation-store-unavailable", ex.Message);
        }
    }

    private static object RootsView(CertificateAuthority.CertificateAuthority ca) => new
    {
        bundleVersion = ca.Bundle.Version,
        roots = ca.Roots.Select(r => new
        {
            id = r.Id,
            active = r.Active,
            subject = r.Certificate.Subject,
            sha256 = r.Certificate.GetCertHashString(System.Security.Cryptography.HashAlgorithmName.SHA256),
            notAfter = new DateTimeOffset(r.Certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero),
        }),
    };

    private static IResult CaChange(CertificateAuthority.CertificateAuthority ca, ReplicaLeadership leadership, string step, Action change)
    {
        if (leadership.CheckLeader(step) is { } refusal)
        {
            return refusal.ToResult();
        }

        try
        {
            change();
            return Results.Json(RootsView(ca));
        }
        catch (KeyNotFoundException ex)
        {
            return Problems.Refuse(StatusCodes.Status404NotFound, "root-not-found", ex.Message);
        }
        catch (InvalidOperationException ex)
        {
            return Problems.Refuse(StatusCodes.Status409Conflict, "ca-change-refused", ex.Message);
        }
    }
}

/// <summary>The body of the identity revocation calls.</summary>
internal sealed record RevokeIdentityRequest(string? SpiffeId, string? Reason);
