using System.Net.Http.Json;
using System.Text.Json;

namespace Shop;

/// <summary>What happened when a service tried to call another through the mesh.</summary>
/// <param name="Caller">The SPIFFE ID the call was made with.</param>
/// <param name="Target">The destination called.</param>
/// <param name="Path">The path called.</param>
/// <param name="Status">The HTTP status the destination answered (0 when the call failed before an answer).</param>
/// <param name="Reason">The mesh's machine-readable reason of a refusal (<c>mesh_authorization_denied</c>), if any.</param>
/// <param name="Detail">The refusal's detail, or the error of a failed call.</param>
internal sealed record MeshCallOutcome(string Caller, string Target, string Path, int Status, string? Reason, string? Detail);

/// <summary>
/// A demonstration endpoint, <c>GET /demo/call/{service}</c>: this service tries a call to another through the mesh, with
/// its own identity, and reports what the other answered. Authorization is decided by the destination, so this shows a
/// refused caller (403 <c>mesh_authorization_denied</c>) without any special client. Sample code only: a real service does
/// not let anonymous callers make it call others.
/// </summary>
internal static class MeshRefusalDemo
{
    /// <summary>The path each destination is tried on: its main API, which only its intended callers may use.</summary>
    private static readonly Dictionary<string, string> Targets = new(StringComparer.Ordinal)
    {
        ["orders"] = "/api/orders/demo-probe",
        ["inventory"] = "/api/inventory/espresso-beans",
    };

    public static void MapMeshRefusalDemo(this WebApplication app)
    {
        var configuration = app.Configuration;
        var self = $"spiffe://{configuration["Mesh:TrustDomain"] ?? "mesh.local"}/ns/{configuration["Mesh:Service:Namespace"] ?? "default"}/svc/{configuration["Mesh:Service:Name"]}";
        app.MapGet("/demo/call/{service}", async (string service, IHttpClientFactory clients, HttpContext http, CancellationToken cancellationToken) =>
        {
            if (!Targets.TryGetValue(service, out var path))
            {
                return Results.NotFound(new { error = $"Try one of: {string.Join(", ", Targets.Keys)}." });
            }

            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, path);
                ShopRun.CopyTo(ShopRun.Of(http), request);
                using var response = await clients.CreateClient(service).SendAsync(request, cancellationToken);
                string? reason = null;
                string? detail = null;
                if (response.Content.Headers.ContentType?.MediaType == "application/problem+json")
                {
                    var problem = await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken);
                    reason = problem.TryGetProperty("reason", out var r) ? r.GetString() : null;
                    detail = problem.TryGetProperty("detail", out var d) ? d.GetString() : null;
                }

                return Results.Ok(new MeshCallOutcome(self, service, path, (int)response.StatusCode, reason, detail));
            }
            catch (HttpRequestException ex)
            {
                return Results.Ok(new MeshCallOutcome(self, service, path, 0, "call_failed", ex.Message));
            }
        });
    }
}
