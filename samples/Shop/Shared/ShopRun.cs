using System.Diagnostics;

namespace Shop;

/// <summary>
/// The run tag: a caller (the end-to-end tests) marks its requests with <c>x-shop-run</c>; each service puts it on its
/// server span as <c>shop.run</c> and passes it on to the services it calls, so the caller can find its own traces in the
/// dashboard among everyone else's.
/// </summary>
internal static class ShopRun
{
    public const string Header = "x-shop-run";
    public const string Tag = "shop.run";
    private const string ItemKey = "shop.run";

    /// <summary>
    /// Reads the run tag of each request (when it is well-formed) and puts it on the server span. Added as a startup
    /// filter, so it runs before routing and authentication: requests the mesh refuses never reach the app's own
    /// middleware, and their spans should carry the run tag too.
    /// </summary>
    public static IServiceCollection AddShopRunTag(this IServiceCollection services) =>
        services.AddSingleton<IStartupFilter, RunTagStartupFilter>();

    private sealed class RunTagStartupFilter : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((context, nextMiddleware) =>
            {
                if (context.Request.Headers[Header].ToString() is { Length: > 0 and <= 64 } run && run.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
                {
                    context.Items[ItemKey] = run;
                    Activity.Current?.SetTag(Tag, run);
                }

                return nextMiddleware(context);
            });
            next(app);
        };
    }

    /// <summary>Gets the run tag of the current request, if any.</summary>
    public static string? Of(HttpContext? context) => context?.Items[ItemKey] as string;

    /// <summary>Passes the run tag on to a call made while handling the request.</summary>
    public static void CopyTo(string? run, HttpRequestMessage request)
    {
        if (run is not null)
        {
            request.Headers.TryAddWithoutValidation(Header, run);
        }
    }
}
