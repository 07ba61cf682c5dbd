using MeshKit.Policy;
using MeshKit.Server;
using MeshKit.Telemetry;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Template;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace MeshKit.Authorization;

/// <summary>
/// Enforces <c>Mesh:Authorization</c> on requests that routing left without an endpoint (middleware that answers itself:
/// <c>app.Use(...)</c>, <c>app.Run(...)</c>, static files, the 404 of the end of the pipeline), which
/// <see cref="MeshAuthorizationMatcherPolicy"/> never sees, and answers a request routing already refused before any of
/// the app's middleware can answer it instead. It runs in ASP.NET Core's authentication middleware (the <c>Mesh</c>
/// scheme is an <see cref="Microsoft.AspNetCore.Authentication.IAuthenticationRequestHandler"/>), which WebApplication
/// places right after routing.
/// </summary>
internal sealed class MeshAuthorizationGate(
    PolicyWatcher policies,
    MeshAuthorizer authorizer,
    IServiceProvider services)
{
    private static readonly Task<bool> NotHandled = Task.FromResult(false);
    private RouteTemplates? _templates;

    /// <summary>Decides a request at the authentication middleware; true when it answered the request itself.</summary>
    public Task<bool> HandleAsync(HttpContext context)
    {
        var authorization = policies.Current.Authorization;
        if (!authorization.Enabled)
        {
            return NotHandled;
        }

        if (context.GetEndpoint() is { } endpoint)
        {
            // Routing chose an endpoint and the matcher policy decided it. A refusal is answered here, so that no
            // middleware of the app that answers by itself runs for a request authorization refused.
            return MeshAuthorizationMatcherPolicy.IsRefusal(endpoint) ? AnswerAsync(endpoint, context) : NotHandled;
        }

        if (context.Features.Get<IMeshAuthorizationFeature>() is MeshAuthorizer.DecisionFeature { ByPath: true })
        {
            // Decided here already (the app authenticates twice): the decision and its rate-limit permit stand.
            return NotHandled;
        }

        var path = context.Request.Path.Value ?? "/";
        if (context.Features.Get<RoutingRanFeature>() is null && MayBeRoutedLater(path))
        {
            // The app authenticates before it routes (UseAuthentication before UseRouting), and this path fits one of its
            // route templates: routing, still to come, will choose the endpoint and the matcher policy will decide it.
            return NotHandled;
        }

        var caller = context.Features.Get<IMeshPeerFeature>()?.SpiffeId;
        return authorizer.Decide(context, authorization, caller, MeshAuthorizationEvaluator.Normalize(path), byPath: true) is { } refusal
            ? RefuseAsync(context, refusal)
            : NotHandled;
    }

    private static async Task<bool> AnswerAsync(Endpoint refusal, HttpContext context)
    {
        await refusal.RequestDelegate!(context).ConfigureAwait(false);
        return true;
    }

    private static async Task<bool> RefuseAsync(HttpContext context, MeshRefusal refusal)
    {
        await refusal.WriteAsync(context).ConfigureAwait(false);
        return true;
    }

    /// <summary>Whether the path fits the route template of one of the app's endpoints (constraints and other policies aside).</summary>
    private bool MayBeRoutedLater(string path)
    {
        var source = services.GetService<EndpointDataSource>();
        if (source is null)
        {
            return false;
        }

        var endpoints = source.Endpoints;
        var templates = _templates;
        if (templates is null || !ReferenceEquals(templates.Endpoints, endpoints))
        {
            // Built once, and again when the app's endpoints change; only requests without an endpoint get here.
            templates = new RouteTemplates(endpoints);
            _templates = templates;
        }

        return templates.Match(path);
    }

    /// <summary>Set by <see cref="MeshAuthorizationMatcherPolicy"/> when routing considered candidates for a request.</summary>
    internal sealed class RoutingRanFeature
    {
        public static readonly RoutingRanFeature Instance = new();
    }


    private sealed class RouteTemplates
    {
        private readonly TemplateMatcher[] _matchers;

        public RouteTemplates(IReadOnlyList<Endpoint> endpoints)
        {
            Endpoints = endpoints;
            var matchers = new List<TemplateMatcher>();
            foreach (var endpoint in endpoints)
            {
                if (endpoint is not RouteEndpoint route)
                {
                    continue;
                }

                try
                {
                    matchers.Add(new TemplateMatcher(new RouteTemplate(route.RoutePattern), new RouteValueDictionary(route.RoutePattern.Defaults)));
                }
                catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
                {
                    // A template this cannot read counts as matching nothing: its paths are then decided by path (closed).
                }
            }

            _matchers = [.. matchers];
        }

        public IReadOnlyList<Endpoint> Endpoints { get; }

        public bool Match(string path)
        {
            var values = new RouteValueDictionary();
            foreach (var matcher in _matchers)
            {
                values.Clear();
                if (matcher.TryMatch(path, values))
                {
                    return true;
                }
            }

            return false;
        }
    }
}
