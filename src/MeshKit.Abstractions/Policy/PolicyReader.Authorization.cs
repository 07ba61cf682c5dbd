using System.Collections.Immutable;
using MeshKit.Authorization;
using MeshKit.Identity;

namespace MeshKit.Policy;

/// <content>Reads <c>Mesh:Authorization</c>.</content>
public static partial class PolicyReader
{
    private static MeshAuthorizationPolicy ReadAuthorization(Section section)
    {
        if (!section.Exists)
        {
            return MeshAuthorizationPolicy.Off;
        }

        section.CheckKnown(PolicyModel.AuthorizationKeys.Section);
        var policy = new MeshAuthorizationPolicy
        {
            DefaultAction = section.Enum<AuthorizationAction>(PolicyModel.AuthorizationKeys.DefaultAction) ?? AuthorizationAction.Deny,
        };

        var rules = ImmutableArray.CreateBuilder<AuthorizationRule>();
        var rulesSection = section.Child(PolicyModel.AuthorizationKeys.Rules);
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
        section.CheckKnown(PolicyModel.RuleKeys.Section);
        var rule = new AuthorizationRule
        {
            Name = section.String(PolicyModel.RuleKeys.Name) ?? $"rule-{index}",
            Index = index,
            Action = section.Enum<AuthorizationAction>(PolicyModel.RuleKeys.Action) ?? AuthorizationAction.Allow,
        };

        var from = section.Child(PolicyModel.FromKeys.Section);
        if (from.Exists)
        {
            from.CheckKnown(PolicyModel.FromKeys.Section);
            var services = ImmutableArray.CreateBuilder<string>();
            foreach (var (key, value) in from.Child(PolicyModel.FromKeys.Services).ListValues())
            {
                string? why = null;
                if (value is not null && MeshNames.IsValidServiceReference(value, out why))
                {
                    services.Add(value);
                }
                else
                {
                    from.Child(PolicyModel.FromKeys.Services).Error(key.Length == 0 ? null : key, $"is '{value}'{(why is null ? string.Empty : ", which " + why)}; write a service name ('frontend') or 'namespace/service'.");
                }
            }

            var namespaces = ImmutableArray.CreateBuilder<string>();
            foreach (var (key, value) in from.Child(PolicyModel.FromKeys.Namespaces).ListValues())
            {
                string? why = null;
                if (value is not null && MeshNames.IsValidNamespace(value, out why))
                {
                    namespaces.Add(value);
                }
                else
                {
                    from.Child(PolicyModel.FromKeys.Namespaces).Error(key.Length == 0 ? null : key, $"is '{value}'{(why is null ? string.Empty : ", which " + why)}; write a namespace name.");
                }
            }

            var ids = ImmutableArray.CreateBuilder<string>();
            foreach (var (key, value) in from.Child(PolicyModel.FromKeys.SpiffeIds).ListValues())
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
                    from.Child(PolicyModel.FromKeys.SpiffeIds).Error(key.Length == 0 ? null : key, $"is '{value}'; write a SPIFFE ID, or a prefix ending in '*' such as spiffe://mesh.local/ns/default/*.");
                }
            }

            var callers = new CallerMatch
            {
                Services = services.ToImmutable(),
                Namespaces = namespaces.ToImmutable(),
                SpiffeIds = ids.ToImmutable(),
                Public = from.Bool(PolicyModel.FromKeys.Public) ?? false,
            };
            if (callers.Services.IsEmpty && callers.Namespaces.IsEmpty && callers.SpiffeIds.IsEmpty && !callers.Public)
            {
                from.Error(null, "matches nobody; name Services, Namespaces or SpiffeIds, set Public to true, or leave From out to match every caller.");
            }

            rule = rule with { From = callers };
        }

        var to = section.Child(PolicyModel.ToKeys.Section);
        if (to.Exists)
        {
            to.CheckKnown(PolicyModel.ToKeys.Section);
            var paths = ImmutableArray.CreateBuilder<string>();
            foreach (var (key, value) in to.Child(PolicyModel.ToKeys.Paths).ListValues())
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
                    to.Child(PolicyModel.ToKeys.Paths).Error(key.Length == 0 ? null : key, $"is '{value}'; write a route template or path starting with '/', a prefix such as '/api/*', or '*'.");
                }
            }

            // Grpc: shorthand for the paths of gRPC methods (exact) and whole services (a segment prefix), added to Paths.
            var grpc = to.Child(PolicyModel.ToKeys.Grpc);
            if (IsWrittenEmpty(to, PolicyModel.ToKeys.Grpc.Name))
            {
                grpc.Error(null, $"is an empty list, which would leave the rule matching every path; {GrpcNameHelp}, or leave Grpc out.");
            }

            foreach (var (key, value) in grpc.ListValues())
            {
                if (GrpcName(grpc, key.Length == 0 ? null : key, value, out var grpcPath, out var isService))
                {
                    paths.Add(isService ? grpcPath + "/*" : grpcPath);
                }
            }

            var methods = ImmutableArray.CreateBuilder<string>();
            foreach (var (key, value) in to.Child(PolicyModel.ToKeys.Methods).ListValues())
            {
                var upper = value?.ToUpperInvariant();
                if (upper is null || Array.IndexOf(PolicyModel.HttpMethods, upper) < 0)
                {
                    to.Child(PolicyModel.ToKeys.Methods).Error(key.Length == 0 ? null : key, $"is '{value}'; use an HTTP method such as GET or POST.");
                }
                else
                {
                    methods.Add(upper);
                }
            }

            rule = rule with { To = new RequestMatch { Paths = paths.ToImmutable(), Methods = methods.ToImmutable() } };
        }

        var rate = section.Child(PolicyModel.RateLimitKeys.Section);
        if (rate.Exists)
        {
            rate.CheckKnown(PolicyModel.RateLimitKeys.Section);
            var permits = rate.Double(PolicyModel.RateLimitKeys.PermitsPerSecond);
            var burst = rate.Int(PolicyModel.RateLimitKeys.Burst) ?? 1;
            var maxCallers = rate.Int(PolicyModel.RateLimitKeys.MaxCallers) ?? RateLimitPolicy.DefaultMaxCallers;
            if (permits is null)
            {
                rate.Error(PolicyModel.RateLimitKeys.PermitsPerSecond.Name, "is missing; write the sustained requests per second allowed per caller.");
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
