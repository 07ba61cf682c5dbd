using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace MeshKit.Authorization;

/// <summary>
/// Keeps the app's own authentication as it was. ASP.NET Core makes a lone registered scheme the default; adding the
/// <c>Mesh</c> scheme beside an app's single scheme (JWT, say) would silently take that default away. So when the app has
/// exactly one scheme of its own and set no default, that scheme is made the default explicitly. When <c>Mesh</c> is the
/// only scheme, it is the default, and <c>HttpContext.User</c> is the mesh caller.
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
