using MeshKit.Identity;

namespace MeshKit.Authorization;

/// <summary>
/// Evaluates <see cref="MeshAuthorizationPolicy"/> for a caller and a request. Requests are matched by the routed
/// endpoint's route template when there is one (so <c>%2F</c>, <c>..</c>, <c>//</c> and case variants of a path cannot
/// reach an endpoint a rule denies), otherwise by the normalised path. The server and <c>meshctl why</c> both use it.
/// </summary>
public static class MeshAuthorizationEvaluator
{
    /// <summary>Decides a request.</summary>
    /// <param name="policy">The authorization policy.</param>
    /// <param name="caller">The caller's SPIFFE ID, or <see langword="null"/> for a caller without mesh identity.</param>
    /// <param name="method">The request method.</param>
    /// <param name="target">The route template of the routed endpoint, or the request path when none was routed.</param>
    /// <returns>The decision.</returns>
    public static AuthorizationDecision Evaluate(MeshAuthorizationPolicy policy, SpiffeId? caller, string method, string target)
    {
        ArgumentNullException.ThrowIfNull(policy);
        if (!policy.Enabled)
        {
            return new AuthorizationDecision(true, null, "Authorization is off (no Mesh:Authorization section).");
        }

        var rules = policy.Rules;
        for (var i = 0; i < rules.Length; i++)
        {
            var rule = rules[i];
            if (CallerMatches(rule.From, caller) && RequestMatches(rule.To, method, target))
            {
                var allowed = rule.Action == AuthorizationAction.Allow;
                return new AuthorizationDecision(allowed, rule, $"{Describe(caller)} {(allowed ? "is allowed" : "is denied")} {method} {target} by rule '{rule.Name}'.");
            }
        }

        var byDefault = policy.DefaultAction == AuthorizationAction.Allow;
        return new AuthorizationDecision(byDefault, null, $"{Describe(caller)} {(byDefault ? "is allowed" : "is denied")} {method} {target}: no rule matches, and the default action is {policy.DefaultAction}.");
    }

    /// <summary>Normalises a path or template for matching: one leading '/', no repeated or trailing '/', '%2F' as '/'.</summary>
    /// <param name="path">The path or template.</param>
    /// <returns>The normalised form.</returns>
    public static string Normalize(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var decoded = path.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase).Replace('\\', '/');
        var builder = new System.Text.StringBuilder(decoded.Length + 1);
        builder.Append('/');
        foreach (var c in decoded)
        {
            if (c == '/' && builder[^1] == '/')
            {
                continue;
            }

            builder.Append(c);
        }

        if (builder.Length > 1 && builder[^1] == '/')
        {
            builder.Length--;
        }

        return builder.ToString();
    }

    internal static bool PathMatches(string pattern, string target)
    {
        if (pattern == "*")
        {
            return true;
        }

        if (pattern.EndsWith("/*", StringComparison.Ordinal))
        {
            var prefix = pattern[..^2];
            return target.Equals(prefix, StringComparison.OrdinalIgnoreCase)
                || (target.Length > prefix.Length && target.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) && target[prefix.Length] == '/');
        }

        if (pattern.EndsWith('*'))
        {
            return target.StartsWith(pattern[..^1], StringComparison.OrdinalIgnoreCase);
        }

        return target.Equals(pattern, StringComparison.OrdinalIgnoreCase);
    }

    private static bool CallerMatches(CallerMatch from, SpiffeId? caller)
    {
        if (from.Any)
        {
            return true;
        }

        if (caller is null)
        {
            return from.Public;
        }

        foreach (var service in from.Services)
        {
            var slash = service.IndexOf('/', StringComparison.Ordinal);
            if (slash < 0
                ? string.Equals(service, caller.Service, StringComparison.Ordinal)
                : service.AsSpan(0, slash).SequenceEqual(caller.Namespace) && service.AsSpan(slash + 1).SequenceEqual(caller.Service))
            {
                return true;
            }
        }

        foreach (var ns in from.Namespaces)
        {
            if (string.Equals(ns, caller.Namespace, StringComparison.Ordinal))
            {
                return true;
            }
        }

        foreach (var pattern in from.SpiffeIds)
        {
            if (pattern.EndsWith('*')
                ? caller.Value.StartsWith(pattern[..^1], StringComparison.Ordinal)
                : string.Equals(pattern, caller.Value, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    private static bool RequestMatches(RequestMatch to, string method, string target)
    {
        if (!to.Methods.IsEmpty)
        {
            var found = false;
            foreach (var m in to.Methods)
            {
                found |= string.Equals(m, method, StringComparison.OrdinalIgnoreCase);
            }

            if (!found)
            {
                return false;
            }
        }

        if (to.Paths.IsEmpty)
        {
            return true;
        }

        foreach (var pattern in to.Paths)
        {
            if (PathMatches(pattern, target))
            {
                return true;
            }
        }

        return false;
    }

    private static string Describe(SpiffeId? caller) => caller?.Value ?? "A caller without mesh identity";
}
