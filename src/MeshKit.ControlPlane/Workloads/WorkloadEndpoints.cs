using MeshKit.ControlPlane.CertificateAuthority;
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
        admin.MapPost("/ca/roots/{id}/activate", (string id, CertificateAuthority.CertificateAuthority ca, ReplicaLeadership leadership, ReplicaTrust trust, CancellationToken cancellationToken) =>
            CheckedCaChangeAsync(ca, leadership, trust, $"CA rotation step 2 (activate root {id})", check => ca.Activate(id, check), cancellationToken));
        admin.MapDelete("/ca/roots/{id}", (string id, CertificateAuthority.CertificateAuthority ca, ReplicaLeadership leadership, ReplicaTrust trust, CancellationToken cancellationToken) =>
            CheckedCaChangeAsync(ca, leadership, trust, $"CA rotation step 3 (remove root {id})", check => ca.RemoveRoot(id, check), cancellationToken));

        // A user-supplied CA (ControlPlane:Ca) is rotated by replacing its files and reloading each replica in turn; every
        // replica reloads its own files, so this is not a leader step. Checked against the other replicas' trust first.
        admin.MapPost("/ca/reload", (CertificateAuthority.CertificateAuthority ca, ReplicaTrust trust, CancellationToken cancellationToken) =>
            CheckedCaChangeAsync(ca, leadership: null, trust, "CA reload", check => ca.Reload(check), cancellationToken));
        admin.MapGet("/ca/replicas", async (CertificateAuthority.CertificateAuthority ca, ReplicaTrust trust, CancellationToken cancellationToken) =>
        {
            IReadOnlyList<ReplicaCaRecord> others;
            try
            {
                others = await trust.ReadOthersAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (MeshKit.Consul.ConsulException ex)
            {
                return Problems.Refuse(StatusCodes.Status503ServiceUnavailable, "ca-replicas-unknown", $"The other replicas' CA records could not be read from Consul: {ex.Message}");
            }

            return Results.Json(new { self = trust.Describe(ca.Trust), others, conflict = ReplicaTrust.Conflict(others, ca.Trust) });
        });
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

    private static object RootsView(CertificateAuthority.CertificateAuthority ca)
    {
        var trust = ca.Trust;
        return new
        {
            bundleVersion = trust.Bundle.Version,
            userSupplied = ca.IsUserSupplied,

            // A generated CA names its roots (root-1, root-2...); a user-supplied bundle's roots are named by fingerprint.
            roots = ca.IsUserSupplied
                ? trust.Bundle.Roots.Select(r => CertificateView(ReplicaTrust.Fingerprint(r)[..16], r, ReferenceEquals(r, trust.IssuingRoot)))
                : ca.Roots.Select(r => CertificateView(r.Id, r.Certificate, r.Active)),
            issuer = CertificateView("issuer", trust.Issuer, active: true),
        };
    }

    private static object CertificateView(string id, System.Security.Cryptography.X509Certificates.X509Certificate2 certificate, bool active) => new
    {
        id,
        active,
        subject = certificate.Subject,
        sha256 = ReplicaTrust.Fingerprint(certificate),
        notAfter = new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero),
    };

    /// <summary>
    /// A CA change that alters the bundle or the issuing root: on the leader when <paramref name="leadership"/> is given,
    /// checked against the other replicas' published trust (read now; unknown means refused), then published at once.
    /// </summary>
    private static async Task<IResult> CheckedCaChangeAsync(
        CertificateAuthority.CertificateAuthority ca,
        ReplicaLeadership? leadership,
        ReplicaTrust trust,
        string step,
        Action<Func<CaTrust, string?>> change,
        CancellationToken cancellationToken)
    {
        if (leadership?.CheckLeader(step) is { } refusal)
        {
            return refusal.ToResult();
        }

        IReadOnlyList<ReplicaCaRecord> others;
        try
        {
            others = await trust.ReadOthersAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (MeshKit.Consul.ConsulException ex)
        {
            return Problems.Refuse(StatusCodes.Status503ServiceUnavailable, "ca-replicas-unknown", $"{step} refused: the other replicas' CA records could not be read from Consul, so it is not known whether they would still trust this replica ({ex.Message}). Nothing changed.");
        }

        try
        {
            change(next => ReplicaTrust.Conflict(others, next));
        }
        catch (KeyNotFoundException ex)
        {
            return Problems.Refuse(StatusCodes.Status404NotFound, "root-not-found", ex.Message);
        }
        catch (CaTrustConflictException ex)
        {
            return Problems.Refuse(StatusCodes.Status409Conflict, "ca-trust-conflict", $"{step} refused, nothing changed: {ex.Message}");
        }
        catch (InvalidOperationException ex)
        {
            return Problems.Refuse(StatusCodes.Status409Conflict, "ca-change-refused", ex.Message);
        }
        catch (InvalidDataException ex)
        {
            return Problems.Refuse(StatusCodes.Status400BadRequest, "ca-files-invalid", $"{step} refused, the CA in use is unchanged: {ex.Message}");
        }

        try
        {
            await trust.PublishAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (MeshKit.Consul.ConsulException)
        {
            // Done here; the record is published again in the background (event 1701 says it could not be).
        }

        return Results.Json(RootsView(ca));
    }

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
