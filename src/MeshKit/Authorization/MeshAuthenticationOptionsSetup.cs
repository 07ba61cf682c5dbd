using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace MeshKit.Authorization;

/// <summary>
/// Keeps the <c>Mesh</c> scheme out of the app's defaults without a process-wide switch. ASP.NET Core makes a lone
/// registered scheme the default (<c>AuthenticationSchemeProvider</c>: no <c>DefaultScheme</c> and exactly one scheme). So,
/// when the app set no default of its own: with <c>Mesh</c> the only scheme, <c>DefaultScheme</c> is set to a name no
/// scheme has (<see cref="NoDefaultScheme"/>), so there is still no default, as in an app without MeshKit that registered
/// none; with exactly one scheme of the app's own beside <c>Mesh</c> (JWT, say), that scheme is made the default, as it
/// would be without MeshKit. <c>Mesh</c> itself is never the default: <c>HttpContext.User</c> is always the app's own, and
/// a public request never runs the <c>Mesh</c> handler's authentication.
/// </summary>
internal sealed class MeshAuthenticationOptionsSetup : IPostConfigureOptions<AuthenticationOptions>
{
    /// <summary>The default scheme's name when <c>Mesh</c> is the only scheme: no scheme has it, so there is no default.</summary>
    internal const string NoDefaultScheme = "MeshKit.NoDefaultScheme";

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

        options.DefaultScheme = appSchemes switch
        {
            0 => NoDefaultScheme,
            1 => appScheme,
            _ => null,
        };
    }
}
