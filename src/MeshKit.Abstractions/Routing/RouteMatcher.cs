using System.Collections.Concurrent;
using MeshKit.Policy;

namespace MeshKit.Routing;

/// <summary>Finds the first route of a destination that matches a request. No allocation, no LINQ.</summary>
public static class RouteMatcher
{
    private static readonly ConcurrentDictionary<string, RoutePolicy> DefaultRoutes = new(StringComparer.Ordinal);

    /// <summary>The route used when no configured route matches: every endpoint, no split.</summary>
    /// <param name="policy">The destination's policy.</param>
    /// <returns>The implicit default route.</returns>
    public static RoutePolicy DefaultRoute(DestinationPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);

        // Immutable and the same for every destination with the same subset key (a handful of names in any mesh):
        // shared, so unmatched calls allocate nothing.
        return DefaultRoutes.TryGetValue(policy.SubsetKey, out var route)
            ? route
            : DefaultRoutes.GetOrAdd(policy.SubsetKey, static key => new RoutePolicy { Name = "default", Index = -1, SubsetKey = key });
    }

    /// <summary>Finds the first matching route.</summary>
    /// <param name="policy">The destination's policy.</param>
    /// <param name="method">The request method.</param>
    /// <param name="path">The request path (decoded as the server will route it is not needed: routes match the path as sent).</param>
    /// <param name="headers">Reads a request header's first value, or <see langword="null"/>.</param>
    /// <returns>The route, or <see langword="null"/> when none matches.</returns>
    public static RoutePolicy? Match<THeaders>(DestinationPolicy policy, string method, string path, THeaders headers)
        where THeaders : IHeaderSource
    {
        ArgumentNullException.ThrowIfNull(policy);
        var routes = policy.Routes;
        for (var i = 0; i < routes.Length; i++)
        {
            var route = routes[i];
            if (Matches(route.Match, method, path, headers))
            {
                return route;
            }
        }

        return null;
    }

    private static bool Matches<THeaders>(RouteMatch match, string method, string path, THeaders headers)
        where THeaders : IHeaderSource
    {
        if (!match.Methods.IsEmpty)
        {
            var found = false;
            foreach (var m in match.Methods)
            {
                if (string.Equals(m, method, StringComparison.OrdinalIgnoreCase))
                {
                    found = true;
                    break;
                }
            }

            if (!found)
            {
                return false;
            }
        }

        switch (match.PathKind)
        {
            case PathMatchKind.Exact when !string.Equals(path, match.Path, StringComparison.Ordinal):
                return false;
            case PathMatchKind.Prefix when !IsPrefix(path, match.Path!):
                return false;
            case PathMatchKind.Regex when !match.PathPattern!.IsMatch(path):
                return false;
        }

        foreach (var header in match.Headers)
        {
            var value = headers.Get(header.Name);
            var ok = header.Kind switch
            {
                PathMatchKind.Any => value is not null,
                PathMatchKind.Exact => string.Equals(value, header.Value, StringComparison.Ordinal),
                PathMatchKind.Prefix => value is not null && value.StartsWith(header.Value!, StringComparison.Ordinal),
                PathMatchKind.Regex => value is not null && header.Pattern!.IsMatch(value),
                _ => false,
            };
            if (!ok)
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsPrefix(string path, string prefix)
    {
        if (!path.StartsWith(prefix, StringComparison.Ordinal))
        {
            return false;
        }

        // Segment boundary: "/api" matches "/api" and "/api/x" but not "/apix". A prefix ending in '/' matches as is.
        return path.Length == prefix.Length || prefix.EndsWith('/') || path[prefix.Length] is '/' or '?';
    }
}
