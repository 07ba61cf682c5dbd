using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace MeshKit.Authorization;

/// <summary>
/// Keeps the app's own authentication as it was. ASP.NET Core makes a lone registered scheme the default; with the
/// <c>Mesh</c> scheme registered beside an app's single scheme (JWT, say), and MeshKit turning that automatic default off,
/// the app's scheme would silently stop being its default. So when the app has exactly one scheme of its own and set no
/// default, that scheme is made the default explicitly. <c>Mesh</c> itself is never the default: <c>HttpContext.User</c>
/// is always the app's own.
/// </summary>
internal sealed class MeshAuthenticationOptionsSetup : IPostConfigureOptions<AuthenticationOptions>
{
    public void PostConfigure(string? name, AuthenticationOptions options)
    {
        if (options.DefaultScheme is not null || options.DefaultAuthenticateScheme is not null)
        {
            return;
        }

        string? appScheme = null;
        var appSchemes = 0;
        foreach (var scheme in options.Schemes)
        {
            if (scheme.Name != MeshAuthenticationDefaults.AuthenticationScheme)
            {
                appSchemes++;
                appScheme = scheme.Name;
            }
        }

        if (appSchemes == 1)
        {
            options.DefaultScheme = appScheme;
        }
    }
}
