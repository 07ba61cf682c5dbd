using System.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace MeshKit.Telemetry;

/// <summary>The server span of a request, when someone records it.</summary>
internal static class ServerSpan
{
    /// <summary>
    /// Gets the request's activity when it is recorded by a listener, or <see langword="null"/>. ASP.NET Core's hosting
    /// also creates an activity when nobody traces (for logging scopes, without an <see cref="ActivitySource"/> listener),
    /// and such an activity says <see cref="Activity.IsAllDataRequested"/> by default: tagging it would cost every request
    /// two tag nodes for nothing.
    /// </summary>
    public static Activity? Recorded(HttpContext context) =>
        context.Features.Get<IHttpActivityFeature>()?.Activity is { IsAllDataRequested: true } activity && activity.Source.HasListeners()
            ? activity
            : null;
}
