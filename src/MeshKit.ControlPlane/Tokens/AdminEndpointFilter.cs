namespace MeshKit.ControlPlane.Tokens;

/// <summary>Admits a request to the admin API only with <c>Authorization: Bearer &lt;admin token&gt;</c>.</summary>
internal sealed class AdminEndpointFilter(AdminCredential credential) : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var presented = BearerToken.Read(context.HttpContext.Request);
        if (presented is null)
        {
            return Problems.Refuse(StatusCodes.Status401Unauthorized, "admin-token-missing", "The admin API needs 'Authorization: Bearer <admin token>'.");
        }

        if (!credential.Matches(presented))
        {
            return Problems.Refuse(StatusCodes.Status401Unauthorized, "admin-token-invalid", "The admin token is not valid.");
        }

        return await next(context).ConfigureAwait(false);
    }
}

/// <summary>Reads a bearer token from the Authorization header.</summary>
internal static class BearerToken
{
    public static string? Read(HttpRequest request)
    {
        var header = request.Headers.Authorization;
        if (header.Count != 1)
        {
            return null;
        }

        var value = header[0];
        const string Scheme = "Bearer ";
        return value is not null && value.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase) && value.Length > Scheme.Length
            ? value[Scheme.Length..].Trim()
            : null;
    }
}
