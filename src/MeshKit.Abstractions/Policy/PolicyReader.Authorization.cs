using System.Collections.Immutable;
using MeshKit.Authorization;
using MeshKit.Identity;

namespace MeshKit.Policy;

/// <content>Reads <c>Mesh:Authorization</c>.</content>
public static partial class PolicyReader
{
    private static readonly string[] AuthorizationKeys = ["DefaultAction", "Rules"];
    private static readonly string[] RuleKeys = ["Name", "Action", "From", "To", "RateLimit"];
    private static readonly string[] FromKeys = ["Services", "Namespaces", "SpiffeIds", "Public"];
    private static readonly string[] ToKeys = ["Paths", "Methods"];
    private static readonly string[] RateLimitKeys = ["PermitsPerSecond", "Burst", "MaxCallers"];

    private static MeshAuthorizationPolicy ReadAuthorization(Section section)
    {
        if (!section.Exists)
        {
            return MeshAuthorizationPolicy.Off;
        }

        section.CheckKnown(AuthorizationKeys);
        var policy = new MeshAuthorizationPolicy
        {
            DefaultAction = section.Enum<AuthorizationAction>("DefaultAction") ?? AuthorizationAction.Deny,
        };

        var rules = ImmutableArray.CreateBuilder<AuthorizationRule>();
        var rulesSection = section.Child("Rules");
        var index = 0;
        foreach (var child in rulesSection.Config.GetChildren().OrderBy(c => int.TryParse(c.Key, out var i) ? i : int.MaxValue))
        {
            if (!int.TryParse(child.Key, out _))
            {
                rulesSection.Error(child.Key, "is not a list index; Rules is an ordered list.");
                continue;
            }

            rules.Add(ReadRule(rulesSection.Child(child.Key), index++));
        }

        return policy with { Rules = rules.ToImmutable() };
    }

    private static AuthorizationRule ReadRule(Section section, int index)
    {
        section.CheckKnown(RuleKeys);
        var rule = new AuthorizationRule
        {
            Name = section.String("Name") ?? $"rule-{index}",
            Index = index,
            Action = section.Enum<AuthorizationAction>("Action") ?? AuthorizationAction.Allow,
        };

        var from = section.Child("From");
        if (from.Exists)
        {
            from.CheckKnown(FromKeys);
            var services = ImmutableArray.CreateBuilder<string>();
            foreach (var (key, value) in from.Child("Services").ListValues())
            {
                string? why = null;
                if (value is not null && MeshNames.IsValidServiceReference(value, out why))
                {
                    services.Add(value);
                }
                else
                {
                    from.Child("Services").Error(key.Length == 0 ? null : key, $"is '{value}'{(why is null ? string.Empty : ", which " + why)}; write a service name ('frontend') or 'namespace/service'.");
                }
            }

            var namespaces = ImmutableArray.CreateBuilder<string>();
            foreach (var (key, value) in from.Child("Namespaces").ListValues())
            {
                string? why = null;
                if (value is not null && MeshNames.IsValidNamespace(value, out why))
                {
                    namespaces.Add(value);
                }
                else
                {
                    from.Child("Namespaces").Error(key.Length == 0 ? null : key, $"is '{value}'{(why is null ? string.Empty : ", which " + why)}; write a namespace name.");
                }
            }

            var ids = ImmutableArray.CreateBuilder<string>();
            foreach (var (key, value) in from.Child("SpiffeIds").ListValues())
            {
                var valid = value is not null && (value.EndsWith('*')
                    ? value.StartsWith(SpiffeId.Prefix, StringComparison.Ordinal)
                    : SpiffeId.TryParse(value, out _));
                if (valid)
                {
                    ids.Add(value!);
                }
                else
                {
                    from.Child("SpiffeIds").Error(key.Length == 0 ? null : key, $"is '{value}'; write a SPIFFE ID, or a prefix ending in '*' such as spiffe://mesh.local/ns/default/*.");
                }
            }

            var callers = new CallerMatch
            {
                Services = services.ToImmutable(),
                Namespaces = namespaces.ToImmutable(),
                SpiffeIds = ids.ToImmutable(),
                Public = from.Bool("Public") ?? false,
            };
            if (callers.Services.IsEmpty && callers.Namespaces.IsEmpty && callers.SpiffeIds.IsEmpty && !callers.Public)
            {
                from.Error(null, "matches nobody; name Services, Namespaces or SpiffeIds, set Public to true, or leave From out to match every caller.");
            }

            rule = rule with { From = callers };
        }

        var to = section.Child("To");
        if (to.Exists)
        {
            to.CheckKnown(ToKeys);
            var paths = ImmutableArray.CreateBuilder<string>();
            foreach (var (key, value) in to.Child("Paths").ListValues())
            {
                if (value == "*")
                {
                    paths.Add(value);
                }
                else if (value is not null && value.StartsWith('/'))
                {
                    // Patterns are normalised like the targets they are matched against.
                    var star = value.EndsWith("/*", StringComparison.Ordinal) ? "/*" : value.EndsWith('*') ? "*" : string.Empty;
                    paths.Add(MeshAuthorizationEvaluator.Normalize(value[..^star.Length]) + star);
                }
                else
                {
                    to.Child("Paths").Error(key.Length == 0 ? null : key, $"is '{value}'; write a route template or path starting with '/', a prefix such as '/api/*', or '*'.");
                }
            }

            var methods = ImmutableArray.CreateBuilder<string>();
            foreach (var (key, value) in to.Child("Methods").ListValues())
            {
                var upper = value?.ToUpperInvariant();
                if (upper is null || Array.IndexOf(HttpMethods, upper) < 0)
                {
                    to.Child("Methods").Error(key.Length == 0 ? null : key, $"is '{value}'; use an HTTP method such as GET or POST.");
                }
                else
                {
                    methods.Add(upper);
                }
            }

            rule = rule with { To = new RequestMatch { Paths = paths.ToImmutable(), Methods = methods.ToImmutable() } };
        }

        var rate = section.Child("RateLimit");
        if (rate.Exists)
        {
            rate.CheckKnown(RateLimitKeys);
            var permits = rate.Double("PermitsPerSecond", 0.001, 1_000_000);
            var burst = rate.Int("Burst", 1, 1_000_000) ?? 1;
            var maxCallers = rate.Int("MaxCallers", 1, 10_000_000) ?? RateLimitPolicy.DefaultMaxCallers;
            if (permits is null)
            {
                rate.Error("PermitsPerSecond", "is missing; write the sustained requests per second allowed per caller.");
            }
            else if (rule.Action == AuthorizationAction.Deny)
            {
                rate.Error(null, "is set on a Deny rule; rate limits apply to requests a rule allows.");
            }
            else
            {
                rule = rule with { RateLimit = new RateLimitPolicy(permits.Value, burst) { MaxCallers = maxCallers } };
            }
        }

        return rule;
    }
}
