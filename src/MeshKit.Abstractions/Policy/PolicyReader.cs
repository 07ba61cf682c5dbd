using System.Collections.Frozen;
using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using MeshKit.Routing;
using Microsoft.Extensions.Configuration;

namespace MeshKit.Policy;

/// <summary>
/// Turns the <c>Mesh:Policy</c> configuration into a validated <see cref="PolicySnapshot"/>. It never throws on bad input:
/// every problem (a bad value, a missing field, an unknown key) becomes a <see cref="PolicyError"/> that names its full
/// path and what would be valid, and a policy with errors yields no snapshot. The same reader serves appsettings, the
/// control service's policy API and <c>meshctl policy check</c>. Key names, the known keys of each section and the bounds
/// of each value come from <see cref="PolicyModel"/>, the one description of the policy's shape.
/// </summary>
public static partial class PolicyReader
{
    /// <summary>The policy keys under the <c>Mesh</c> section; other keys of <c>Mesh:Policy</c> are reported as unknown.</summary>
    public static readonly IReadOnlyList<string> PolicyKeys = PolicyModel.PolicyKeys.Section.Names;

    /// <summary>The sections of a policy document: the traffic policy and the serving side's authorization.</summary>
    public static readonly IReadOnlyList<string> DocumentKeys = PolicyModel.Mesh.Names;

    /// <summary>Reads and validates the policy parts of a <c>Mesh</c> section: <c>Policy</c> and <c>Authorization</c>.</summary>
    /// <param name="mesh">The <c>Mesh</c> section, or a policy document's root (either part may be absent: built-in defaults apply, authorization is off).</param>
    /// <param name="path">The path to name in errors; <c>Mesh</c> by default.</param>
    /// <returns>The snapshot, or the errors.</returns>
    public static PolicyReadResult Read(IConfiguration mesh, string path = "Mesh")
    {
        ArgumentNullException.ThrowIfNull(mesh);
        var errors = new List<PolicyError>();
        var root = new Section(mesh, path, errors);
        var section = root.Child(PolicyModel.PolicyKeys.Section);
        section.CheckKnown(PolicyModel.PolicyKeys.Section);

        var subsetHeader = "x-mesh-subset";
        if (section.Config[PolicyModel.PolicyKeys.SubsetHeader.Name] is { } configured)
        {
            if (configured.Length == 0)
            {
                subsetHeader = string.Empty;
            }
            else if (!IsToken(configured))
            {
                section.Error(PolicyModel.PolicyKeys.SubsetHeader.Name, $"'{configured}' is not a valid header name; use letters, digits and '-', or an empty value to turn the override off.");
            }
            else
            {
                subsetHeader = configured;
            }
        }

        var builtIn = new DestinationPolicy { Destination = "*" };
        var defaults = ReadDestination(section.Child(PolicyModel.DestinationKeys.Defaults), "*", builtIn, PolicyModel.DestinationKeys.Defaults);

        var destinations = new Dictionary<string, DestinationPolicy>(StringComparer.Ordinal);
        var destinationsSection = section.Child(PolicyModel.PolicyKeys.Destinations);
        foreach (var child in destinationsSection.Config.GetChildren())
        {
            var name = child.Key;
            if (!MeshNames.IsValidServiceKey(name, out var why))
            {
                destinationsSection.Error(name, $"is not a destination name: it {why}. Use the service name as mesh clients call it ('orders', or 'orders.payments' for another namespace).");
                continue;
            }

            destinations[name] = ReadDestination(destinationsSection.Child(name), name, defaults, PolicyModel.DestinationKeys.Section);
        }

        var authorization = ReadAuthorization(root.Child(PolicyModel.AuthorizationKeys.Section));
        if (errors.Count > 0)
        {
            return new PolicyReadResult(null, errors);
        }

        return new PolicyReadResult(
            new PolicySnapshot(defaults, destinations.ToFrozenDictionary(StringComparer.Ordinal), subsetHeader.Length == 0 ? null : subsetHeader, authorization, Hash(mesh)),
            errors);
    }

    /// <summary>
    /// Reads a policy document in JSON: either <c>{ "Mesh": { "Policy": ..., "Authorization": ... } }</c> (an appsettings file)
    /// or <c>{ "Policy": ..., "Authorization": ... }</c> (a central policy document).
    /// </summary>
    /// <param name="json">The JSON text.</param>
    /// <returns>The snapshot, or the errors (a JSON syntax error is one error).</returns>
    public static PolicyReadResult ReadJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        if (!TryParseJson(json, "(document)", out var root, out var syntaxError))
        {
            return new PolicyReadResult(null, [syntaxError]);
        }

        if (root.GetSection("Mesh").Exists())
        {
            return Read(root.GetSection("Mesh"));
        }

        // A bare document: only Policy and Authorization belong at its top.
        var errors = new List<PolicyError>();
        foreach (var child in root.GetChildren())
        {
            if (!DocumentKeys.Contains(child.Key, StringComparer.OrdinalIgnoreCase))
            {
                errors.Add(new PolicyError(child.Key, $"is not a known setting here; a policy document holds {string.Join(" and ", DocumentKeys)}."));
            }
        }

        var result = Read(root, string.Empty);
        return errors.Count == 0 ? result : new PolicyReadResult(null, [.. errors, .. result.Errors]);
    }

    /// <summary>
    /// Parses a policy document's JSON into configuration, as the app's <c>appsettings.json</c> would be: the one JSON
    /// parse of policy, for documents (<see cref="ReadJson"/>) and central policy (<see cref="PolicyComposer"/>) alike.
    /// </summary>
    /// <param name="json">The JSON text.</param>
    /// <param name="documentPath">What to name in the error (<c>(document)</c>, <c>(central policy)</c>).</param>
    /// <param name="root">The document as configuration.</param>
    /// <param name="error">The syntax error, naming <paramref name="documentPath"/>.</param>
    /// <returns>Whether the text is JSON.</returns>
    internal static bool TryParseJson(string json, string documentPath, [NotNullWhen(true)] out IConfigurationRoot? root, [NotNullWhen(false)] out PolicyError? error)
    {
        try
        {
            root = new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json))).Build();
            error = null;
            return true;
        }
        catch (Exception ex) when (ex is FormatException or InvalidDataException or System.Text.Json.JsonException)
        {
            root = null;
            error = new PolicyError(documentPath, $"is not valid JSON: {ex.GetBaseException().Message}");
            return false;
        }
    }

    private static DestinationPolicy ReadDestination(Section section, string destination, DestinationPolicy inherit, PolicyKey known)
    {
        section.CheckKnown(known);
        var timeout = section.Duration(PolicyModel.DestinationKeys.Timeout) ?? inherit.Timeout;
        var explicitAttempt = section.Duration(PolicyModel.DestinationKeys.AttemptTimeout);
        var attemptTimeout = explicitAttempt ?? inherit.AttemptTimeout;
        if (attemptTimeout > timeout)
        {
            if (explicitAttempt is not null)
            {
                section.Error(PolicyModel.DestinationKeys.AttemptTimeout.Name, $"is {attemptTimeout}, longer than Timeout {timeout}; an attempt cannot outlast the whole call.");
            }
            else
            {
                // An inherited attempt timeout longer than a shorter total timeout set here simply shrinks to it.
                attemptTimeout = timeout;
            }
        }

        var subsetKey = section.String(PolicyModel.DestinationKeys.SubsetKey) ?? inherit.SubsetKey;
        var policy = inherit with
        {
            Destination = destination,
            Timeout = timeout,
            AttemptTimeout = attemptTimeout,
            IdleTimeout = section.Duration(PolicyModel.DestinationKeys.IdleTimeout) ?? inherit.IdleTimeout,
            Retry = ReadRetry(section.Child(PolicyModel.RetryKeys.Section), inherit.Retry),
            Concurrency = ReadConcurrency(section.Child(PolicyModel.ConcurrencyKeys.Section), inherit.Concurrency),
            OutlierDetection = ReadOutlier(section.Child(PolicyModel.OutlierKeys.Section), inherit.OutlierDetection),
            LoadBalancer = section.Enum<LoadBalancerKind>(PolicyModel.DestinationKeys.LoadBalancer) ?? inherit.LoadBalancer,
            FailurePenalty = section.Duration(PolicyModel.DestinationKeys.FailurePenalty) ?? inherit.FailurePenalty,
            SubsetKey = subsetKey,
            Routes = [],
        };

        var routes = section.Child(PolicyModel.DestinationKeys.Routes);
        if (routes.Exists)
        {
            var list = ImmutableArray.CreateBuilder<RoutePolicy>();
            var index = 0;
            foreach (var child in routes.Config.GetChildren().OrderBy(c => int.TryParse(c.Key, out var i) ? i : int.MaxValue))
            {
                if (!int.TryParse(child.Key, NumberStyles.None, CultureInfo.InvariantCulture, out _))
                {
                    routes.Error(child.Key, "is not a list index; Routes is an ordered list.");
                    continue;
                }

                var route = ReadRoute(routes.Child(child.Key), index, subsetKey);
                if (route is not null)
                {
                    list.Add(route);
                }

                index++;
            }

            policy = policy with { Routes = list.ToImmutable() };
        }

        return policy;
    }

    private static RetryPolicy ReadRetry(Section section, RetryPolicy inherit)
    {
        if (!section.Exists)
        {
            return inherit;
        }

        section.CheckKnown(PolicyModel.RetryKeys.Section);
        var retry = inherit with
        {
            MaxRetries = section.Int(PolicyModel.RetryKeys.MaxRetries) ?? inherit.MaxRetries,
            BaseDelay = section.Duration(PolicyModel.RetryKeys.BaseDelay) ?? inherit.BaseDelay,
            MaxDelay = section.Duration(PolicyModel.RetryKeys.MaxDelay) ?? inherit.MaxDelay,
        };

        var methods = section.String(PolicyModel.RetryKeys.Methods);
        if (methods is not null)
        {
            if (string.Equals(methods, "Idempotent", StringComparison.OrdinalIgnoreCase))
            {
                retry = retry with { RetryAllMethods = false };
            }
            else if (string.Equals(methods, "All", StringComparison.OrdinalIgnoreCase))
            {
                retry = retry with { RetryAllMethods = true };
            }
            else
            {
                section.Error(PolicyModel.RetryKeys.Methods.Name, $"is '{methods}'; use 'Idempotent' (GET, HEAD, OPTIONS, TRACE, PUT, DELETE; the default) or 'All'.");
            }
        }

        var retryOn = section.Child(PolicyModel.RetryKeys.RetryOn);
        if (retryOn.Exists)
        {
            bool connect = false, server = false, timeout = false;
            foreach (var (key, value) in retryOn.ListValues())
            {
                switch (value?.ToLowerInvariant())
                {
                    case "connect-failure":
                        connect = true;
                        break;
                    case "5xx":
                        server = true;
                        break;
                    case "timeout":
                        timeout = true;
                        break;
                    default:
                        retryOn.Error(key, $"is '{value}'; use 'connect-failure', '5xx' or 'timeout'.");
                        break;
                }
            }

            retry = retry with { OnConnectFailure = connect, OnServerError = server, OnTimeout = timeout };
        }

        if (ReadGrpcStatus(section.Child(PolicyModel.RetryKeys.GrpcStatus)) is { } retriedStatuses)
        {
            retry = retry with { GrpcStatus = retriedStatuses };
        }

        var budget = section.Child(PolicyModel.BudgetKeys.Section);
        if (budget.Exists)
        {
            budget.CheckKnown(PolicyModel.BudgetKeys.Section);
            retry = retry with
            {
                BudgetRatio = budget.Double(PolicyModel.BudgetKeys.Ratio) ?? retry.BudgetRatio,
                BudgetMinimumThroughput = budget.Int(PolicyModel.BudgetKeys.MinimumThroughput) ?? retry.BudgetMinimumThroughput,
                BudgetWindow = budget.Duration(PolicyModel.BudgetKeys.Window) ?? retry.BudgetWindow,
            };
        }

        if (retry.MaxDelay < retry.BaseDelay)
        {
            section.Error(PolicyModel.RetryKeys.MaxDelay.Name, $"is {retry.MaxDelay}, shorter than BaseDelay {retry.BaseDelay}.");
        }

        return retry;
    }

    /// <summary>Reads a list of gRPC status names or numbers; <see langword="null"/> when the list is not given.</summary>
    private static GrpcStatusSet? ReadGrpcStatus(Section list)
    {
        if (!list.Exists)
        {
            return null;
        }

        Span<int> codes = stackalloc int[GrpcStatusSet.Names.Count];
        var count = 0;
        foreach (var (key, value) in list.ListValues())
        {
            if (!GrpcStatusSet.TryParseCode(value, out var code) || code == 0)
            {
                list.Error(key, $"is '{value}'; use a gRPC status name other than OK (Unavailable, ResourceExhausted, DeadlineExceeded, ...) or its number (1-16).");
            }
            else if (count < codes.Length)
            {
                codes[count++] = code;
            }
        }

        return GrpcStatusSet.Of(codes[..count]);
    }

    private static ConcurrencyPolicy ReadConcurrency(Section section, ConcurrencyPolicy inherit)
    {
        if (!section.Exists)
        {
            return inherit;
        }

        section.CheckKnown(PolicyModel.ConcurrencyKeys.Section);
        return inherit with
        {
            MaxRequests = section.Int(PolicyModel.ConcurrencyKeys.MaxRequests) ?? inherit.MaxRequests,
            MaxQueue = section.Int(PolicyModel.ConcurrencyKeys.MaxQueue) ?? inherit.MaxQueue,
        };
    }

    private static OutlierPolicy ReadOutlier(Section section, OutlierPolicy inherit)
    {
        if (!section.Exists)
        {
            return inherit;
        }

        section.CheckKnown(PolicyModel.OutlierKeys.Section);
        var outlier = inherit with
        {
            Enabled = section.Bool(PolicyModel.OutlierKeys.Enabled) ?? inherit.Enabled,
            ConsecutiveFailures = section.Int(PolicyModel.OutlierKeys.ConsecutiveFailures) ?? inherit.ConsecutiveFailures,
            ConsecutiveConnectFailures = section.Int(PolicyModel.OutlierKeys.ConsecutiveConnectFailures) ?? inherit.ConsecutiveConnectFailures,
            BaseEjectionTime = section.Duration(PolicyModel.OutlierKeys.BaseEjectionTime) ?? inherit.BaseEjectionTime,
            MaxEjectionTime = section.Duration(PolicyModel.OutlierKeys.MaxEjectionTime) ?? inherit.MaxEjectionTime,
            MaxEjectionPercent = section.Int(PolicyModel.OutlierKeys.MaxEjectionPercent) ?? inherit.MaxEjectionPercent,
            GrpcStatus = ReadGrpcStatus(section.Child(PolicyModel.OutlierKeys.GrpcStatus)) ?? inherit.GrpcStatus,
        };
        if (outlier.MaxEjectionTime < outlier.BaseEjectionTime)
        {
            section.Error(PolicyModel.OutlierKeys.MaxEjectionTime.Name, $"is {outlier.MaxEjectionTime}, shorter than BaseEjectionTime {outlier.BaseEjectionTime}.");
        }

        return outlier;
    }

    private static RoutePolicy? ReadRoute(Section section, int index, string inheritedSubsetKey)
    {
        section.CheckKnown(PolicyModel.RouteKeys.Section);
        var name = section.String(PolicyModel.RouteKeys.Name) ?? $"route-{index}";
        var subsetKey = section.String(PolicyModel.RouteKeys.SubsetKey) ?? inheritedSubsetKey;
        var match = ReadMatch(section.Child(PolicyModel.MatchKeys.Section));

        SubsetSplit? split = null;
        var splitSection = section.Child(PolicyModel.RouteKeys.Split);
        if (splitSection.Exists)
        {
            var subsets = ImmutableArray.CreateBuilder<string>();
            var weights = ImmutableArray.CreateBuilder<int>();
            foreach (var child in splitSection.Config.GetChildren())
            {
                var weight = splitSection.Int(child.Key, PolicyModel.RouteKeys.Split.Item!);
                if (weight is null)
                {
                    continue;
                }

                if (!MeshNames.IsValidSubsetName(child.Key, out var why))
                {
                    splitSection.Error(child.Key, $"is not a subset name: it {why}. Subsets are metadata values such as 'v1'.");
                    continue;
                }

                subsets.Add(child.Key);
                weights.Add(weight.Value);
            }

            if (subsets.Count == 0)
            {
                splitSection.Error(null, "is empty; list subsets with weights, for example { \"v1\": 90, \"v2\": 10 }.");
            }
            else if (weights.Sum() == 0)
            {
                splitSection.Error(null, "has weights that sum to 0; at least one subset needs a positive weight.");
            }
            else
            {
                split = new SubsetSplit(subsets.ToImmutable(), weights.ToImmutable());
            }
        }

        MirrorPolicy? mirror = null;
        var mirrorSection = section.Child(PolicyModel.MirrorKeys.Section);
        if (mirrorSection.Exists)
        {
            mirrorSection.CheckKnown(PolicyModel.MirrorKeys.Section);
            var subset = mirrorSection.String(PolicyModel.MirrorKeys.Subset);
            if (subset is null)
            {
                mirrorSection.Error(PolicyModel.MirrorKeys.Subset.Name, "is missing; name the subset that receives the copies.");
            }
            else if (!MeshNames.IsValidSubsetName(subset, out var why))
            {
                mirrorSection.Error("Subset", $"'{subset}' is not a subset name: it {why}.");
            }
            else
            {
                mirror = new MirrorPolicy(subset, mirrorSection.Double(PolicyModel.MirrorKeys.Percent) ?? 100);
            }
        }

        FaultPolicy? fault = null;
        var faultSection = section.Child(PolicyModel.FaultKeys.Section);
        if (faultSection.Exists)
        {
            faultSection.CheckKnown(PolicyModel.FaultKeys.Section);
            var delay = faultSection.Child(PolicyModel.DelayKeys.Section);
            var abort = faultSection.Child(PolicyModel.AbortKeys.Section);
            delay.CheckKnown(PolicyModel.DelayKeys.Section);
            abort.CheckKnown(PolicyModel.AbortKeys.Section);
            var delayPercent = delay.Exists ? delay.Double(PolicyModel.DelayKeys.Percent) ?? 100 : 0;
            var delayDuration = delay.Exists ? delay.Duration(PolicyModel.DelayKeys.Duration) ?? TimeSpan.Zero : TimeSpan.Zero;
            var abortPercent = abort.Exists ? abort.Double(PolicyModel.AbortKeys.Percent) ?? 100 : 0;
            var abortStatus = abort.Exists ? abort.Int(PolicyModel.AbortKeys.Status) ?? 503 : 503;
            fault = new FaultPolicy(delayPercent, delayDuration, abortPercent, abortStatus);
        }

        var route = new RoutePolicy
        {
            Name = name,
            Index = index,
            Match = match,
            Split = split,
            SubsetKey = subsetKey,
            Mirror = mirror,
            Fault = fault,
        };
        if (ReadCanary(section.Child(PolicyModel.CanaryKeys.Section), split, splitSection.Exists) is { } canary)
        {
            // Without a Split, a canary route starts with all its traffic on the stable subset; the control service writes
            // the Split from then on.
            route = route with
            {
                Canary = canary,
                Split = split ?? new SubsetSplit([canary.StableSubset, canary.CanarySubset], [100, 0]),
            };
        }

        return route;
    }

    private static RouteMatch ReadMatch(Section section)
    {
        if (!section.Exists)
        {
            return new RouteMatch();
        }

        section.CheckKnown(PolicyModel.MatchKeys.Section);
        var match = new RouteMatch();
        var path = section.Child(PolicyModel.PathKeys.Section);
        if (path.Exists)
        {
            var (kind, value, pattern) = ReadValueMatch(path, isPath: true);
            match = match with { PathKind = kind, Path = value, PathPattern = pattern };
        }

        // Grpc: shorthand for the path of a gRPC method (exact) or of a whole service's methods (a segment prefix).
        var grpc = section.Child(PolicyModel.MatchKeys.Grpc);
        if (IsWrittenEmpty(section, PolicyModel.MatchKeys.Grpc.Name))
        {
            section.Error(PolicyModel.MatchKeys.Grpc.Name, $"is empty, which would leave the route matching every path; {GrpcNameHelp}, or leave Grpc out.");
        }
        else if (grpc.Exists)
        {
            var name = section.Config[PolicyModel.MatchKeys.Grpc.Name];
            if (name is null)
            {
                section.Error(PolicyModel.MatchKeys.Grpc.Name, "is a list or section; a route matches one gRPC method or service, written as one string such as 'inventory.v1.Inventory/Reserve' or 'inventory.v1.Inventory' (one route per method or service).");
            }
            else if (path.Exists)
            {
                section.Error(PolicyModel.MatchKeys.Grpc.Name, "is set with Path; both match the request's path, so use one (Grpc for a gRPC method or service).");
            }
            else if (GrpcName(section, PolicyModel.MatchKeys.Grpc.Name, name, out var grpcPath, out var isService))
            {
                match = match with { PathKind = isService ? PathMatchKind.Prefix : PathMatchKind.Exact, Path = grpcPath };
            }
        }

        var methods = section.Child(PolicyModel.MatchKeys.Methods);
        if (methods.Exists)
        {
            var list = ImmutableArray.CreateBuilder<string>();
            foreach (var (key, value) in methods.ListValues())
            {
                var upper = value?.ToUpperInvariant();
                if (upper is null || Array.IndexOf(PolicyModel.HttpMethods, upper) < 0)
                {
                    methods.Error(key, $"is '{value}'; use an HTTP method such as GET or POST.");
                }
                else
                {
                    list.Add(upper);
                }
            }

            match = match with { Methods = list.ToImmutable() };
        }

        var headers = section.Child(PolicyModel.HeaderKeys.Section);
        if (headers.Exists)
        {
            var list = ImmutableArray.CreateBuilder<HeaderMatch>();
            foreach (var child in headers.Config.GetChildren())
            {
                if (!IsToken(child.Key))
                {
                    headers.Error(child.Key, "is not a valid header name.");
                    continue;
                }

                var header = headers.Child(child.Key);
                if (child.Value is not null)
                {
                    // Shorthand: "x-user": "bob" means an exact match.
                    list.Add(new HeaderMatch(child.Key, PathMatchKind.Exact, child.Value, null));
                    continue;
                }

                var (kind, value, pattern) = ReadValueMatch(header, isPath: false);
                list.Add(new HeaderMatch(child.Key, kind, value, pattern));
            }

            match = match with { Headers = list.ToImmutable() };
        }

        return match;
    }

    private static (PathMatchKind Kind, string? Value, Regex? Pattern) ReadValueMatch(Section section, bool isPath)
    {
        if (section.Config is IConfigurationSection { Value: { } shorthand } && isPath)
        {
            // Shorthand: "Path": "/api" means a prefix match.
            return ValidatePath(section, null, PathMatchKind.Prefix, shorthand);
        }

        var known = isPath ? PolicyModel.PathKeys.Section : PolicyModel.HeaderKeys.Item;
        section.CheckKnown(known);
        var given = 0;
        (PathMatchKind, string?, Regex?) result = (PathMatchKind.Any, null, null);
        foreach (var key in known.Names)
        {
            var value = section.Config[key];
            if (value is null)
            {
                continue;
            }

            given++;
            result = key switch
            {
                "Prefix" => isPath ? ValidatePath(section, key, PathMatchKind.Prefix, value) : (PathMatchKind.Prefix, value, null),
                "Exact" => isPath ? ValidatePath(section, key, PathMatchKind.Exact, value) : (PathMatchKind.Exact, value, null),
                "Regex" => (PathMatchKind.Regex, value, section.Regex(key, value)),
                _ => Present(section, key),
            };
        }

        if (given != 1)
        {
            section.Error(null, isPath
                ? "needs exactly one of Prefix, Exact or Regex."
                : "needs exactly one of Exact, Prefix, Regex or Present.");
        }

        return result;
    }

    private static (PathMatchKind, string?, Regex?) Present(Section section, string key)
    {
        if (section.Bool(key) == false)
        {
            section.Error(key, "is false; 'Present' only matches a header that is there (true). To match on absence, order a route that needs the header first.");
        }

        return (PathMatchKind.Any, null, null);
    }

    private static (PathMatchKind, string?, Regex?) ValidatePath(Section section, string? key, PathMatchKind kind, string value)
    {
        if (!value.StartsWith('/'))
        {
            section.Error(key, $"is '{value}'; a path starts with '/'.");
        }

        return (kind, value, null);
    }

    private static string Hash(IConfiguration mesh)
    {
        // The content hash: sorted keys and values of the policy parts, so the same policy has the same version wherever it is loaded.
        var builder = new StringBuilder();
        var entries = mesh.GetSection(PolicyModel.PolicyKeys.Section.Name).AsEnumerable().Concat(mesh.GetSection(PolicyModel.AuthorizationKeys.Section.Name).AsEnumerable())
            .Where(kv => kv.Value is not null)
            .Select(kv => new KeyValuePair<string, string?>(RelativeKey(mesh, kv.Key), kv.Value))
            .OrderBy(kv => kv.Key, StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in entries)
        {
            builder.Append(key.ToLowerInvariant()).Append('=').Append(value).Append('\n');
        }

        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(builder.ToString())))[..12];
    }

    private static string RelativeKey(IConfiguration mesh, string key)
    {
        var prefix = mesh is IConfigurationSection section && section.Path.Length > 0 ? section.Path + ":" : string.Empty;
        return key.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) ? key[prefix.Length..] : key;
    }

    private static bool IsToken(string value)
    {
        foreach (var c in value)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            {
                return false;
            }
        }

        return value.Length > 0;
    }

    /// <summary>A configuration section with its full path, collecting errors.</summary>
    private readonly struct Section(IConfiguration config, string path, List<PolicyError> errors)
    {
        public IConfiguration Config { get; } = config;

        public bool Exists => Config is IConfigurationSection section ? section.Exists() : Config.GetChildren().Any();

        public string Path => path;

        public Section Child(string key) => new(Config.GetSection(key), path.Length == 0 ? key : $"{path}:{key}", errors);

        public Section Child(PolicyKey key) => Child(key.Name);

        public void Error(string? key, string message) => errors.Add(new PolicyError(key is null ? path : $"{path}:{key}", message));

        public void CheckKnown(PolicyKey section) => CheckKnown(section.Names);

        public void CheckKnown(IReadOnlyList<string> known)
        {
            if (!Exists)
            {
                return;
            }

            if (Config is IConfigurationSection { Value: { } value } && !Config.GetChildren().Any())
            {
                Error(null, $"is a value ('{value}'), but it should be a section with {string.Join(", ", known)}.");
                return;
            }

            foreach (var child in Config.GetChildren())
            {
                var isKnown = false;
                foreach (var k in known)
                {
                    isKnown |= string.Equals(k, child.Key, StringComparison.OrdinalIgnoreCase);
                }

                if (!isKnown)
                {
                    Error(child.Key, $"is not a known setting here; known settings are {string.Join(", ", known)}.");
                }
            }
        }

        public IEnumerable<(string Key, string? Value)> ListValues()
        {
            if (Config is IConfigurationSection { Value: { } single })
            {
                // "Methods": "GET" is accepted as a one-element list.
                return [(string.Empty, single)];
            }

            return Config.GetChildren().Select(c => (c.Key, c.Value));
        }

        public string? String(string key)
        {
            var value = Config[key];
            if (value is not null && value.Length == 0)
            {
                Error(key, "is empty.");
                return null;
            }

            return value;
        }

        public string? String(PolicyKey key) => String(key.Name);

        public TimeSpan? Duration(PolicyKey key) => Duration(key.Name, key.MinimumDuration, key.MaximumDuration, key.Required);

        public int? Int(PolicyKey key) => Int(key.Name, key);

        public int? Int(string key, PolicyKey shape) => Int(key, (int)shape.Minimum, (int)shape.Maximum, shape.Required);

        public double? Double(PolicyKey key) => Double(key.Name, key.Minimum, key.Maximum);

        public bool? Bool(PolicyKey key) => Bool(key.Name);

        public TEnum? Enum<TEnum>(PolicyKey key)
            where TEnum : struct, Enum => Enum<TEnum>(key.Name);

        public TimeSpan? Duration(string key, TimeSpan min, TimeSpan max, bool required = false)
        {
            var value = Config[key];
            if (value is null)
            {
                if (required)
                {
                    Error(key, "is missing; write a duration such as 00:00:01.5.");
                }

                return null;
            }

            if (!TimeSpan.TryParse(value, CultureInfo.InvariantCulture, out var parsed))
            {
                Error(key, $"is '{value}', not a duration; write hh:mm:ss(.fff), for example 00:00:02.5 for 2.5 seconds.");
                return null;
            }

            if (parsed < min || parsed > max)
            {
                Error(key, $"is {parsed}; use a value from {min} to {max}.");
                return null;
            }

            return parsed;
        }

        public int? Int(string key, int min, int max, bool required = false)
        {
            var value = Config[key];
            if (value is null)
            {
                if (required)
                {
                    Error(key, $"is missing; write a whole number from {min} to {max}.");
                }

                return null;
            }

            if (!int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var parsed) || parsed < min || parsed > max)
            {
                Error(key, $"is '{value}'; use a whole number from {min} to {max}.");
                return null;
            }

            return parsed;
        }

        public double? Double(string key, double min, double max)
        {
            var value = Config[key];
            if (value is null)
            {
                return null;
            }

            if (!double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed) || double.IsNaN(parsed) || parsed < min || parsed > max)
            {
                Error(key, $"is '{value}'; use a number from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}.");
                return null;
            }

            return parsed;
        }

        public bool? Bool(string key)
        {
            var value = Config[key];
            if (value is null)
            {
                return null;
            }

            if (!bool.TryParse(value, out var parsed))
            {
                Error(key, $"is '{value}'; use true or false.");
                return null;
            }

            return parsed;
        }

        public TEnum? Enum<TEnum>(string key)
            where TEnum : struct, Enum
        {
            var value = Config[key];
            if (value is null)
            {
                return null;
            }

            if (!System.Enum.TryParse<TEnum>(value, ignoreCase: true, out var parsed) || !System.Enum.IsDefined(parsed) || int.TryParse(value, out _))
            {
                Error(key, $"is '{value}'; use one of {string.Join(", ", System.Enum.GetNames<TEnum>())}.");
                return null;
            }

            return parsed;
        }

        public Regex? Regex(string key, string pattern)
        {
            try
            {
                // Anchored, and non-backtracking so that no pattern can make matching take unbounded time.
                return new Regex($"^(?:{pattern})$", RegexOptions.NonBacktracking | RegexOptions.CultureInvariant);
            }
            catch (ArgumentException ex)
            {
                Error(key, $"is not a valid regular expression: {ex.Message}");
                return null;
            }
        }
    }
}
