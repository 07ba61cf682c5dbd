using MeshKit.Server;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;

namespace MeshKit.Authorization;

/// <summary>Names of the <c>Mesh</c> authentication scheme.</summary>
public static class MeshAuthenticationDefaults
{
    /// <summary>The scheme that authenticates mesh callers by their validated client certificate.</summary>
    public const string AuthenticationScheme = "Mesh";
}
