using MeshKit.ControlPlane.Tokens;

namespace MeshKit.ControlPlane.Workloads;

/// <summary>The admin API's view of workloads and tokens.</summary>
internal static class WorkloadEndpoints
{
    public static IEndpointRouteBuilder MapWorkloadAdminApi(this IEndpointRouteBuilder endpoints)
    {
        var admin = endpoints.MapGroup("/v1").AddEndpointFilter<AdminEndpointFilter>();
        admin.MapGet("/workloads", (WorkloadRegistry workloads, CertificateAuthority.CertificateAuthority ca) =>
            Results.Json(new { trustDomain = ca.TrustDomain, bundleVersion = ca.Bundle.Version, workloads = workloads.List() }));
        admin.MapGet("/tokens", (JoinTokenRegistry tokens) =>
            Results.Json(tokens.Names.Select(n => new { name = n, revoked = tokens.IsRevoked(n) })));
        admin.MapPost("/tokens/{name}/revoke", (string name, JoinTokenRegistry tokens) =>
            tokens.Revoke(name)
                ? Results.Json(new { name, revoked = true })
                : Problems.Refuse(StatusCodes.Status404NotFound, "token-not-found", $"No join token is named '{name}'; GET /v1/tokens lists them."));
        return endpoints;
    }
}
