using System.Text;
using System.Text.Json.Serialization;
using MeshKit.ControlPlane.Tokens;

namespace MeshKit.ControlPlane.Policy;

/// <summary>One validation error in an answer.</summary>
internal sealed record PolicyErrorView([property: JsonPropertyName("path")] string Path, [property: JsonPropertyName("message")] string Message);

/// <summary>
/// The policy admin API (admin token): read, write (validated by the workloads' own validator; every error returned),
/// dry-run diff, delete. A write reaches watching workloads through the control channel.
/// </summary>
internal static class PolicyEndpoints
{
    private const int MaxDocumentBytes = 1024 * 1024;

    public static IEndpointRouteBuilder MapPolicyAdminApi(this IEndpointRouteBuilder endpoints)
    {
        var admin = endpoints.MapGroup("/v1/policy").AddEndpointFilter<AdminEndpointFilter>();
        admin.MapGet("/", (CentralPolicy central) => !central.Store.IsLoaded ? StoreNotLoaded(central) : Results.Json(new
        {
            source = central.Source,
            services = central.All().OrderBy(d => d.Service, StringComparer.Ordinal).Select(d => new { service = d.Service, version = d.Version }),
        }));
        admin.MapGet("/{service}", (string service, CentralPolicy central, HttpContext http) =>
        {
            if (!central.Store.IsLoaded)
            {
                return StoreNotLoaded(central);
            }

            var document = central.Get(service);
            if (document is null)
            {
                return Problems.Refuse(StatusCodes.Status404NotFound, "policy-not-found", $"No central policy is stored for '{service}'.");
            }

            http.Response.Headers.ETag = $"\"{document.Version}\"";
            return Results.Text(document.Json, "application/json", Encoding.UTF8);
        });
        admin.MapPut("/{service}", PutAsync);
        admin.MapPost("/{service}/diff", async (string service, HttpContext http, CentralPolicy central) =>
        {
            var (json, refusal) = await ReadBodyAsync(http).ConfigureAwait(false);
            return refusal ?? Validate(service, json!, central, dryRun: true).Result;
        });
        admin.MapDelete("/{service}", DeleteAsync);
        return endpoints;
    }

    private static async Task<IResult> DeleteAsync(string service, CentralPolicy central, CancellationToken cancellationToken)
    {
        if (!PolicyDocument.IsServiceKey(service))
        {
            return Problems.Refuse(StatusCodes.Status400BadRequest, "service-invalid", $"'{service}' is not a service key; use the service name, or name.namespace outside the default namespace.");
        }

        try
        {
            var tombstone = await central.Store.DeleteAsync(service, cancellationToken).ConfigureAwait(false);
            return tombstone is not null
                ? Results.Json(new { service, deleted = true, revision = tombstone.Revision })
                : Problems.Refuse(StatusCodes.Status404NotFound, "policy-not-found", $"No central policy is stored for '{service}'.");
        }
        catch (PolicyConflictException ex)
        {
            return Problems.Refuse(StatusCodes.Status409Conflict, "policy-conflict", ex.Message);
        }
        catch (PolicyStoreUnavailableException ex)
        {
            return Problems.Refuse(StatusCodes.Status503ServiceUnavailable, "policy-store-unavailable", ex.Message);
        }
    }

    private static IResult StoreNotLoaded(CentralPolicy central) =>
        Problems.Refuse(StatusCodes.Status503ServiceUnavailable, "policy-store-unavailable", $"The central policy store ({central.Source}) has not been read yet; this replica cannot say what is stored. Retry shortly.");

    private static async Task<IResult> PutAsync(string service, HttpContext http, CentralPolicy central, CancellationToken cancellationToken)
    {
        var (json, refusal) = await ReadBodyAsync(http).ConfigureAwait(false);
        if (refusal is not null)
        {
            return refusal;
        }

        var dryRun = string.Equals(http.Request.Query["dryRun"], "true", StringComparison.OrdinalIgnoreCase);
        var validated = Validate(service, json!, central, dryRun);
        if (dryRun || validated.Version is null)
        {
            return validated.Result;
        }

        var expected = http.Request.Headers.IfMatch.ToString().Trim('"', ' ');
        try
        {
            var stored = await central.Store.PutAsync(service, json!, validated.Version, expected.Length == 0 ? null : expected, cancellationToken).ConfigureAwait(false);
            http.Response.Headers.ETag = $"\"{stored.Version}\"";
            return Results.Json(new { service, version = stored.Version, changes = validated.Changes });
        }
        catch (PolicyConflictException ex)
        {
            return Problems.Refuse(StatusCodes.Status409Conflict, "policy-conflict", ex.Message);
        }
        catch (PolicyStoreUnavailableException ex)
        {
            return Problems.Refuse(StatusCodes.Status503ServiceUnavailable, "policy-store-unavailable", ex.Message);
        }
    }

    private static (IResult Result, string? Version, List<PolicyChange>? Changes) Validate(string service, string json, CentralPolicy central, bool dryRun)
    {
        if (!PolicyDocument.IsServiceKey(service))
        {
            return (Problems.Refuse(StatusCodes.Status400BadRequest, "service-invalid", $"'{service}' is not a service key; use the service name, or name.namespace outside the default namespace."), null, null);
        }

        var result = PolicyDocument.Validate(json);
        if (!result.IsValid)
        {
            return (Results.Problem(
                detail: $"The policy for '{service}' has {result.Errors.Count} error(s); nothing was stored.",
                statusCode: StatusCodes.Status400BadRequest,
                title: "The policy is not valid.",
                type: Problems.TypePrefix + "policy-invalid",
                extensions: new Dictionary<string, object?>
                {
                    ["reason"] = "policy-invalid",
                    ["errors"] = result.Errors.Select(e => new PolicyErrorView(e.Path, e.Message)).ToList(),
                }), null, null);
        }

        var current = central.Get(service);
        var changes = PolicyDocument.Diff(current?.Json, json);
        var version = result.Snapshot!.Version;
        return (Results.Json(new { service, valid = true, dryRun, currentVersion = current?.Version, version, changes }), version, changes);
    }

    private static async Task<(string? Json, IResult? Refusal)> ReadBodyAsync(HttpContext http)
    {
        if (http.Request.ContentLength > MaxDocumentBytes)
        {
            return (null, Problems.Refuse(StatusCodes.Status413PayloadTooLarge, "body-too-large", $"A policy document is at most {MaxDocumentBytes} bytes."));
        }

        using var reader = new StreamReader(http.Request.Body, Encoding.UTF8);
        var buffer = new char[MaxDocumentBytes + 1];
        var read = 0;
        int n;
        while ((n = await reader.ReadAsync(buffer.AsMemory(read), http.RequestAborted).ConfigureAwait(false)) > 0)
        {
            read += n;
            if (read > MaxDocumentBytes)
            {
                return (null, Problems.Refuse(StatusCodes.Status413PayloadTooLarge, "body-too-large", $"A policy document is at most {MaxDocumentBytes} bytes."));
            }
        }

        return (new string(buffer, 0, read), null);
    }
}
