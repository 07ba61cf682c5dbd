using System.Globalization;
using System.Text;
using MeshKit.Authorization;
using MeshKit.Cli.ControlPlane;
using MeshKit.Discovery;
using MeshKit.Identity;
using MeshKit.Policy;
using MeshKit.Routing;
using Microsoft.Extensions.Configuration;

namespace MeshKit.Cli.Why;

/// <summary>An endpoint discovery reported, and which source reported it.</summary>
internal sealed record SourcedEndpoint(DiscoveredEndpoint Endpoint, string Source);

/// <summary>Everything <c>meshctl why</c> decides from, gathered first so the decision itself is a pure function.</summary>
internal sealed record WhyInputs
{
    public required string From { get; init; }

    public required string To { get; init; }

    public required string Method { get; init; }

    public required string Path { get; init; }

    public required IReadOnlyDictionary<string, string> Headers { get; init; }

    /// <summary>Gets the caller's local configuration (its appsettings files), empty when none was given.</summary>
    public required IConfiguration CallerConfiguration { get; init; }

    public required bool CallerConfigurationGiven { get; init; }

    public required string CallerConfigurationSource { get; init; }

    /// <summary>Gets the caller's central document from the control service, when one is stored and was read.</summary>
    public string? CallerCentral { get; init; }

    public required string CallerCentralSource { get; init; }

    /// <summary>Gets whether the control service was asked for central documents (so an absent one is known to be absent).</summary>
    public bool CentralConsulted { get; init; }

    public required IConfiguration DestinationConfiguration { get; init; }

    public required bool DestinationConfigurationGiven { get; init; }

    public required string DestinationConfigurationSource { get; init; }

    public string? DestinationCentral { get; init; }

    public required string DestinationCentralSource { get; init; }

    public required string TrustDomain { get; init; }

    public required string TrustDomainSource { get; init; }

    public required IReadOnlyList<SourcedEndpoint> Endpoints { get; init; }

    /// <summary>Gets whether any discovery source was actually read (a configuration with the static section, or Consul).</summary>
    public required bool DiscoveryKnown { get; init; }

    public required string DiscoverySource { get; init; }

    /// <summary>Gets the caller's instances as the control service last heard from them, or <see langword="null"/> when not consulted.</summary>
    public IReadOnlyList<WorkloadEntry>? CallerInstances { get; init; }

    public required string EjectionSource { get; init; }

    /// <summary>Gets the route template of the destination endpoint the path routes to, when the operator gave it.</summary>
    public string? RouteTemplate { get; init; }

    public IReadOnlyList<string> Notes { get; init; } = [];
}

/// <summary>
/// Explains a request with the runtime's own code: <see cref="PolicyComposer"/> for the caller's and the destination's
/// policy, <see cref="RouteMatcher"/> and <see cref="SubsetSplit"/> for the route and subset, <see cref="MeshEndpointMetadata"/>
/// for subset membership, and <see cref="MeshAuthorizationEvaluator"/> for the destination's decision.
/// </summary>
internal static class WhyExplainer
{
    public static WhyReport Explain(WhyInputs inputs)
    {
        var notes = new List<string>(inputs.Notes);
        var (callerNamespace, callerService) = SplitKey(inputs.From, inputs.CallerConfiguration["Mesh:Service:Namespace"] ?? SpiffeId.DefaultNamespace);
        var (destinationNamespace, destinationService) = SplitKey(inputs.To, callerNamespace);
        var caller = SpiffeId.Create(inputs.TrustDomain, callerNamespace, callerService);
        var destination = SpiffeId.Create(inputs.TrustDomain, destinationNamespace, destinationService);
        var path = StripQuery(inputs.Path);
        var request = new WhyRequest(inputs.From, caller.Value, inputs.To, destination.Value, inputs.Method, path, inputs.Headers);

        if (inputs.CallerConfiguration["Mesh:Service:Name"] is { Length: > 0 } configuredName && configuredName != callerService)
        {
            notes.Add($"The caller configuration names the service '{configuredName}', not '{callerService}' (--from).");
        }

        if (!inputs.CallerConfigurationGiven)
        {
            notes.Add("No --config was given: the caller's local Mesh:Policy is unknown, so only its central policy and the built-in defaults are used.");
        }

        var sources = new List<WhySource>
        {
            new("caller local configuration", inputs.CallerConfigurationSource),
            new("caller central policy", inputs.CallerCentralSource),
            new("destination local configuration", inputs.DestinationConfigurationSource),
            new("destination central policy", inputs.DestinationCentralSource),
            new("trust domain", $"{inputs.TrustDomain} ({inputs.TrustDomainSource})"),
            new("endpoints", inputs.DiscoverySource),
            new("ejections", inputs.EjectionSource),
            new("authorization target", inputs.RouteTemplate is null
                ? "the normalised request path (give --route-template when the destination's endpoint has a template such as /api/orders/{id}: rules match the routed endpoint's template)"
                : "--route-template"),
        };

        // The caller's policy, composed exactly as the caller's PolicyWatcher composes it.
        var callerPolicy = PolicyComposer.Compose(inputs.CallerConfiguration, inputs.CallerCentral);
        var authorization = ExplainAuthorization(inputs, caller, path, notes, out var destinationErrors);
        if (!callerPolicy.IsValid)
        {
            var errors = callerPolicy.Errors.Select(e => e.ToString()).Concat(destinationErrors).ToList();
            return new WhyReport(request, null, null, [], 0, false, authorization, null, null,
                new WhyOutcome("policy_invalid", "The caller's policy (local and central, merged) does not validate: the runtime would refuse it at start, or keep its last good policy on reload."),
                sources, notes, errors);
        }

        var snapshot = callerPolicy.Snapshot!;
        var policy = snapshot.For(inputs.To);
        var headers = new HeaderSource(inputs.Headers);
        var matched = RouteMatcher.Match(policy, inputs.Method, path, headers);
        var route = matched ?? RouteMatcher.DefaultRoute(policy);
        var whyRoute = new WhyRoute(
            route.Name,
            route.Index,
            matched is not null,
            matched is null ? (policy.Routes.IsEmpty ? "no routes are configured" : "none of the configured routes matched") : Describe(route.Match),
            policy.Routes.Length,
            snapshot.Destinations.ContainsKey(inputs.To) ? $"Mesh:Policy:Destinations:{inputs.To}" : "Mesh:Policy:Defaults (no policy of its own)");

        var subset = ExplainSubset(snapshot, route, headers);
        var (endpoints, candidates, panic) = ExplainEndpoints(inputs, route, subset, caller, notes);

        var fault = route.Fault is { } f
            ? string.Join("; ", new[]
            {
                f.DelayPercent > 0 ? $"{f.DelayPercent.ToString(CultureInfo.InvariantCulture)} % delayed by {Durations.Format(f.Delay)}" : null,
                f.AbortPercent > 0 ? $"{f.AbortPercent.ToString(CultureInfo.InvariantCulture)} % aborted with {f.AbortStatus}" : null,
            }.Where(s => s is not null))
            : null;
        var mirror = route.Mirror is { } m ? $"{m.Percent.ToString(CultureInfo.InvariantCulture)} % copied to subset {m.Subset}" : null;

        var outcome = Decide(inputs, subset, endpoints, candidates, authorization);
        return new WhyReport(request, whyRoute, subset, endpoints, candidates, panic, authorization, fault, mirror, outcome, sources, notes, destinationErrors);
    }

    /// <summary>The subset decision, in the order the routing stage takes it: the tester's header first, then the split.</summary>
    private static WhySubset ExplainSubset(PolicySnapshot snapshot, RoutePolicy route, HeaderSource headers)
    {
        var split = route.Split is { } s
            ? s.Subsets.Select((name, i) => new WhySplitEntry(name, s.Weights[i], Math.Round(s.Percent(i), 2))).ToList()
            : [];
        var header = snapshot.SubsetHeader;
        var headerValue = header is null ? null : headers.Get(header);
        if (header is not null && headerValue is { Length: > 0 })
        {
            return new WhySubset(route.SubsetKey, headerValue, "header", true, null, null, header, headerValue, split);
        }

        if (route.Split is { } weighted)
        {
            // A draw picks a subset with probability weight/total: only a split with one non-zero weight is deterministic.
            var live = Enumerable.Range(0, weighted.Subsets.Length).Where(i => weighted.Weights[i] > 0).ToList();
            if (live.Count == 1)
            {
                var i = live[0];
                return new WhySubset(route.SubsetKey, weighted.Subsets[i], "split", true, weighted.Weights[i], Math.Round(weighted.Percent(i), 2), header, headerValue, split);
            }

            return new WhySubset(route.SubsetKey, null, "split", false, null, null, header, headerValue, split);
        }

        return new WhySubset(route.SubsetKey, null, "none", true, null, null, header, headerValue, split);
    }

    private static (List<WhyEndpoint> Endpoints, int Candidates, bool Panic) ExplainEndpoints(WhyInputs inputs, RoutePolicy route, WhySubset subset, SpiffeId caller, List<string> notes)
    {
        // Ejections as the caller's instances last reported them: "orders=10.0.0.1:443,10.0.0.2:443;inventory=...".
        var ejectedBy = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var instance in inputs.CallerInstances ?? [])
        {
            if (instance.SpiffeId != caller.Value || string.IsNullOrEmpty(instance.EjectedEndpoints))
            {
                continue;
            }

            foreach (var group in instance.EjectedEndpoints.Split(';', StringSplitOptions.RemoveEmptyEntries))
            {
                var equals = group.IndexOf('=', StringComparison.Ordinal);
                if (equals <= 0 || group[..equals] != inputs.To)
                {
                    continue;
                }

                foreach (var key in group[(equals + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries))
                {
                    if (!ejectedBy.TryGetValue(key, out var list))
                    {
                        ejectedBy[key] = list = [];
                    }

                    list.Add(instance.Instance ?? "(no instance id)");
                }
            }
        }

        if (inputs.CallerInstances is { Count: 0 } || (inputs.CallerInstances is not null && !inputs.CallerInstances.Any(w => w.SpiffeId == caller.Value)))
        {
            notes.Add($"No instance of {caller.Value} has reported to the control service, so no ejections are known.");
        }

        var endpoints = new List<WhyEndpoint>();
        foreach (var (endpoint, source) in inputs.Endpoints)
        {
            var value = endpoint.Metadata.Get(route.SubsetKey);
            var candidate = subset.Name is null
                ? subset.Deterministic || value is not null && subset.Split.Any(e => e.Subset == value && e.Weight > 0)
                : string.Equals(value, subset.Name, StringComparison.Ordinal);
            endpoints.Add(new WhyEndpoint(
                endpoint.Key,
                endpoint.Metadata.Version,
                endpoint.Metadata.Zone,
                endpoint.Metadata.Weight,
                value,
                candidate,
                ejectedBy.TryGetValue(endpoint.Key, out var by) ? by : [],
                source));
        }

        var candidates = endpoints.Where(e => e.Candidate).ToList();
        var panic = candidates.Count > 0 && candidates.All(e => e.EjectedBy.Count > 0);
        if (panic)
        {
            notes.Add("Every candidate endpoint is ejected by some caller instance: an instance that has all of them ejected uses them all (panic mode).");
        }

        return (endpoints, candidates.Count, panic);
    }

    private static WhyAuthorization ExplainAuthorization(WhyInputs inputs, SpiffeId caller, string path, List<string> notes, out List<string> errors)
    {
        errors = [];
        var target = MeshAuthorizationEvaluator.Normalize(inputs.RouteTemplate ?? path);
        var centralHasAuthorization = inputs.DestinationCentral is not null && CentralHasAuthorization(inputs.DestinationCentral);

        // A central Authorization replaces the local one whole; without one, the destination's local settings decide.
        if (!centralHasAuthorization && !inputs.DestinationConfigurationGiven)
        {
            return new WhyAuthorization(false, false, "unknown", null,
                $"The destination's authorization is not known: {(inputs.CentralConsulted ? "its central policy has no Authorization section" : "the control service was not consulted")}, and no --dest-config was given for its local Mesh:Authorization.",
                target, null);
        }

        var composed = PolicyComposer.Compose(inputs.DestinationConfiguration, inputs.DestinationCentral);
        if (!composed.IsValid)
        {
            errors.AddRange(composed.Errors.Select(e => "destination: " + e));
            return new WhyAuthorization(false, false, "unknown", null, "The destination's policy (local and central, merged) does not validate, so the runtime would not run it.", target, null);
        }

        var policy = composed.Snapshot!.Authorization;
        var decision = MeshAuthorizationEvaluator.Evaluate(policy, caller, inputs.Method, target);
        var rateLimit = decision.Rule?.RateLimit is { } limit
            ? $"{limit.PermitsPerSecond.ToString(CultureInfo.InvariantCulture)}/s per caller, burst {limit.Burst}"
            : null;
        if (!policy.Enabled)
        {
            notes.Add("Authorization is off at the destination (no Mesh:Authorization section): every request is allowed, and the server span carries no mesh.authorization attributes.");
        }

        return new WhyAuthorization(true, policy.Enabled, decision.Allowed ? "allow" : "deny", decision.RuleName, decision.Reason, target, rateLimit);
    }

    private static WhyOutcome Decide(WhyInputs inputs, WhySubset subset, List<WhyEndpoint> endpoints, int candidates, WhyAuthorization authorization)
    {
        if (inputs.DiscoveryKnown && endpoints.Count == 0)
        {
            return new WhyOutcome("no_endpoints", $"No endpoints are known for '{inputs.To}': the call fails with no_endpoints before it leaves the caller.");
        }

        if (inputs.DiscoveryKnown && subset.Name is not null && candidates == 0)
        {
            var values = endpoints.Select(e => e.SubsetValue ?? "(none)").Distinct().Order(StringComparer.Ordinal);
            return new WhyOutcome("no_endpoints_in_subset", $"Subset {subset.Key}={subset.Name} (chosen by {subset.Reason}) has no endpoints; endpoints have {subset.Key} = {string.Join(", ", values)}. The call fails with no_endpoints_in_subset.");
        }

        if (authorization.Decision == "deny")
        {
            return new WhyOutcome("denied", $"The destination answers 403 mesh_authorization_denied: {authorization.Reason}");
        }

        if (authorization.Decision == "unknown" || !inputs.DiscoveryKnown)
        {
            var missing = new List<string>();
            if (!inputs.DiscoveryKnown)
            {
                missing.Add("the endpoints (give --config with Mesh:Discovery:Static, or --consul)");
            }

            if (authorization.Decision == "unknown")
            {
                missing.Add("the destination's authorization (give --dest-config, or store its Authorization centrally)");
            }

            return new WhyOutcome("unknown", $"Routing is explained; not known: {string.Join("; ", missing)}.");
        }

        var where = subset.Name is null ? (subset.Deterministic ? "any endpoint" : "a subset drawn by weight") : $"subset {subset.Name}";
        return new WhyOutcome("ok", $"The call goes to {where} ({candidates} candidate endpoint(s)) and is allowed by {(authorization.Rule is "default" or "off" ? "the " + authorization.Rule + (authorization.Rule == "off" ? " switch" : " action") : $"rule '{authorization.Rule}'")}.");
    }

    private static bool CentralHasAuthorization(string json)
    {
        try
        {
            var root = new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json))).Build();
            return root.GetSection("Authorization").Exists();
        }
        catch (Exception ex) when (ex is FormatException or InvalidDataException or System.Text.Json.JsonException)
        {
            return false;
        }
    }

    /// <summary>Splits a service key (<c>orders</c>, <c>orders.payments</c>) into namespace and service.</summary>
    public static (string Namespace, string Service) SplitKey(string key, string defaultNamespace)
    {
        var dot = key.IndexOf('.', StringComparison.Ordinal);
        return dot < 0 ? (defaultNamespace, key) : (key[(dot + 1)..], key[..dot]);
    }

    private static string StripQuery(string path)
    {
        var query = path.IndexOfAny(['?', '#']);
        var bare = query < 0 ? path : path[..query];
        return bare.StartsWith('/') ? bare : "/" + bare;
    }

    private static string Describe(RouteMatch match)
    {
        var parts = new List<string>();
        parts.Add(match.PathKind switch
        {
            PathMatchKind.Prefix => $"path prefix {match.Path}",
            PathMatchKind.Exact => $"path exactly {match.Path}",
            PathMatchKind.Regex => $"path regex {match.PathPattern}",
            _ => "any path",
        });
        if (!match.Methods.IsEmpty)
        {
            parts.Add("methods " + string.Join(", ", match.Methods));
        }

        foreach (var header in match.Headers)
        {
            parts.Add(header.Kind switch
            {
                PathMatchKind.Any => $"header {header.Name} present",
                PathMatchKind.Regex => $"header {header.Name} regex {header.Pattern}",
                PathMatchKind.Prefix => $"header {header.Name} prefix '{header.Value}'",
                _ => $"header {header.Name} = '{header.Value}'",
            });
        }

        return string.Join("; ", parts);
    }

    /// <summary>The request's headers for the route matcher; names are case-insensitive, as on the wire.</summary>
    private readonly struct HeaderSource(IReadOnlyDictionary<string, string> headers) : IHeaderSource
    {
        public string? Get(string name)
        {
            foreach (var (key, value) in headers)
            {
                if (string.Equals(key, name, StringComparison.OrdinalIgnoreCase))
                {
                    return value;
                }
            }

            return null;
        }
    }
}
