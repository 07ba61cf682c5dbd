using System.Collections.Immutable;
using MeshKit.Authorization;
using MeshKit.Routing;

namespace MeshKit.Policy;

/// <summary>
/// The shape of the policy configuration (<c>Mesh:Policy</c> and <c>Mesh:Authorization</c>), next to the records it builds:
/// every key with what it holds, its bounds and default, and the record properties it fills. This is the one place the
/// shape is written. <see cref="PolicyReader"/> takes its key names, known-key lists and bounds from here; tests in
/// <c>MeshKit.Abstractions.Tests/Policy</c> hold the records (every public property is a key here or named as derived),
/// the reader (every key is read into the properties it names), the JSON schema (<c>src/MeshKit/ConfigurationSchema.json</c>,
/// shipped in the package) and the docs' tables against it.
/// </summary>
internal static class PolicyModel
{
    /// <summary>The HTTP methods a route or rule may name.</summary>
    internal static readonly string[] HttpMethods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"];

    private static readonly PolicyKey HttpMethod = new() { Name = "<n>", Kind = PolicyValueKind.Choice, Choices = [.. HttpMethods] };

    /// <summary>Gets the <c>Mesh</c> section (or a central document's root): the traffic policy and the serving side's authorization.</summary>
    internal static PolicyKey Mesh => MeshKeys.Section;

    private static PolicyKey Duration(string name, TimeSpan min, TimeSpan max, string? defaultValue, string property, bool required = false) =>
        new() { Name = name, Kind = PolicyValueKind.Duration, MinimumDuration = min, MaximumDuration = max, Default = defaultValue, Properties = [property], Required = required };

    private static PolicyKey Integer(string name, int min, int max, string? defaultValue, string property, bool required = false) =>
        new() { Name = name, Kind = PolicyValueKind.Integer, Minimum = min, Maximum = max, Default = defaultValue, Properties = [property], Required = required };

    private static PolicyKey Number(string name, double min, double max, string? defaultValue, string property, bool required = false) =>
        new() { Name = name, Kind = PolicyValueKind.Number, Minimum = min, Maximum = max, Default = defaultValue, Properties = [property], Required = required };

    private static PolicyKey Choice<TEnum>(string name, TEnum defaultValue, string property)
        where TEnum : struct, Enum =>
        new() { Name = name, Kind = PolicyValueKind.Choice, Choices = [.. Enum.GetNames<TEnum>()], Default = defaultValue.ToString(), Properties = [property] };

    private static PolicyKey Text(string name, string text, ImmutableArray<string> examples, string property, string? defaultValue = null, bool required = false) =>
        new() { Name = name, Kind = PolicyValueKind.String, Text = text, Examples = examples, Properties = [property], Default = defaultValue, Required = required };

    private static PolicyKey Strings(string name, string text, ImmutableArray<string> examples, string property) =>
        new() { Name = name, Kind = PolicyValueKind.List, Properties = [property], Item = new() { Name = "<n>", Kind = PolicyValueKind.String, Text = text, Examples = examples } };

    private static PolicyKey GrpcStatuses(string property) =>
        new()
        {
            Name = "GrpcStatus",
            Kind = PolicyValueKind.List,
            Item = new() { Name = "<n>", Kind = PolicyValueKind.Choice, Choices = [.. GrpcStatusSet.Names.Skip(1)] },
            DefaultList = ["Unavailable"],
            Properties = [property],
        };

    /// <summary><c>Retry</c>: which requests are retried and how (<see cref="RetryPolicy"/>).</summary>
    internal static class RetryKeys
    {
        public static readonly PolicyKey MaxRetries = Integer("MaxRetries", 0, 10, "2", nameof(RetryPolicy.MaxRetries));

        public static readonly PolicyKey Methods = new()
        {
            Name = "Methods",
            Kind = PolicyValueKind.Choice,
            Choices = ["Idempotent", "All"],
            Default = "Idempotent",
            Properties = [nameof(RetryPolicy.RetryAllMethods)],
        };

        public static readonly PolicyKey RetryOn = new()
        {
            Name = "RetryOn",
            Kind = PolicyValueKind.List,
            Item = new() { Name = "<n>", Kind = PolicyValueKind.Choice, Choices = ["connect-failure", "5xx", "timeout"] },
            DefaultList = ["connect-failure", "5xx", "timeout"],
            Properties = [nameof(RetryPolicy.OnConnectFailure), nameof(RetryPolicy.OnServerError), nameof(RetryPolicy.OnTimeout)],
        };

        public static readonly PolicyKey GrpcStatus = GrpcStatuses(nameof(RetryPolicy.GrpcStatus));

        public static readonly PolicyKey BaseDelay = Duration("BaseDelay", TimeSpan.Zero, TimeSpan.FromMinutes(1), "00:00:00.025", nameof(RetryPolicy.BaseDelay));
        public static readonly PolicyKey MaxDelay = Duration("MaxDelay", TimeSpan.Zero, TimeSpan.FromMinutes(5), "00:00:01", nameof(RetryPolicy.MaxDelay));

        public static readonly PolicyKey Section = new()
        {
            Name = "Retry",
            Kind = PolicyValueKind.Section,
            Record = typeof(RetryPolicy),
            Properties = [nameof(DestinationPolicy.Retry)],
            Keys = [MaxRetries, Methods, RetryOn, GrpcStatus, BaseDelay, MaxDelay, BudgetKeys.Section],
        };
    }

    /// <summary><c>Retry:Budget</c>: the retry budget, kept in <see cref="RetryPolicy"/>.</summary>
    internal static class BudgetKeys
    {
        public static readonly PolicyKey Ratio = Number("Ratio", 0, 1, "0.2", nameof(RetryPolicy.BudgetRatio));
        public static readonly PolicyKey MinimumThroughput = Integer("MinimumThroughput", 1, 1_000_000, "10", nameof(RetryPolicy.BudgetMinimumThroughput));
        public static readonly PolicyKey Window = Duration("Window", TimeSpan.FromSeconds(1), TimeSpan.FromDays(1), "00:00:10", nameof(RetryPolicy.BudgetWindow));

        public static readonly PolicyKey Section = new() { Name = "Budget", Kind = PolicyValueKind.Section, Keys = [Ratio, MinimumThroughput, Window] };
    }

    /// <summary><c>Concurrency</c>: circuit breaking (<see cref="ConcurrencyPolicy"/>).</summary>
    internal static class ConcurrencyKeys
    {
        public static readonly PolicyKey MaxRequests = Integer("MaxRequests", 1, 1_000_000, "1024", nameof(ConcurrencyPolicy.MaxRequests));
        public static readonly PolicyKey MaxQueue = Integer("MaxQueue", 0, 1_000_000, "0", nameof(ConcurrencyPolicy.MaxQueue));

        public static readonly PolicyKey Section = new()
        {
            Name = "Concurrency",
            Kind = PolicyValueKind.Section,
            Record = typeof(ConcurrencyPolicy),
            Properties = [nameof(DestinationPolicy.Concurrency)],
            Keys = [MaxRequests, MaxQueue],
        };
    }

    /// <summary><c>OutlierDetection</c>: the per-endpoint breaker (<see cref="OutlierPolicy"/>).</summary>
    internal static class OutlierKeys
    {
        public static readonly PolicyKey Enabled = new() { Name = "Enabled", Kind = PolicyValueKind.Boolean, Default = "true", Properties = [nameof(OutlierPolicy.Enabled)] };
        public static readonly PolicyKey ConsecutiveFailures = Integer("ConsecutiveFailures", 1, 1000, "5", nameof(OutlierPolicy.ConsecutiveFailures));
        public static readonly PolicyKey ConsecutiveConnectFailures = Integer("ConsecutiveConnectFailures", 1, 1000, "1", nameof(OutlierPolicy.ConsecutiveConnectFailures));
        public static readonly PolicyKey GrpcStatus = GrpcStatuses(nameof(OutlierPolicy.GrpcStatus));
        public static readonly PolicyKey BaseEjectionTime = Duration("BaseEjectionTime", TimeSpan.FromMilliseconds(10), TimeSpan.FromHours(1), "00:00:30", nameof(OutlierPolicy.BaseEjectionTime));
        public static readonly PolicyKey MaxEjectionTime = Duration("MaxEjectionTime", TimeSpan.FromMilliseconds(10), TimeSpan.FromHours(24), "00:05:00", nameof(OutlierPolicy.MaxEjectionTime));
        public static readonly PolicyKey MaxEjectionPercent = Integer("MaxEjectionPercent", 0, 100, "50", nameof(OutlierPolicy.MaxEjectionPercent));

        public static readonly PolicyKey Section = new()
        {
            Name = "OutlierDetection",
            Kind = PolicyValueKind.Section,
            Record = typeof(OutlierPolicy),
            Properties = [nameof(DestinationPolicy.OutlierDetection)],
            Keys = [Enabled, ConsecutiveFailures, ConsecutiveConnectFailures, GrpcStatus, BaseEjectionTime, MaxEjectionTime, MaxEjectionPercent],
        };
    }

    /// <summary><c>Defaults</c> and <c>Destinations:&lt;name&gt;</c>: a destination's policy (<see cref="DestinationPolicy"/>).</summary>
    internal static class DestinationKeys
    {
        public static readonly PolicyKey Timeout = Duration("Timeout", TimeSpan.FromMilliseconds(1), TimeSpan.FromHours(1), "00:00:30", nameof(DestinationPolicy.Timeout));
        public static readonly PolicyKey AttemptTimeout = Duration("AttemptTimeout", TimeSpan.FromMilliseconds(1), TimeSpan.FromHours(1), "00:00:10", nameof(DestinationPolicy.AttemptTimeout));
        public static readonly PolicyKey IdleTimeout = Duration("IdleTimeout", TimeSpan.Zero, TimeSpan.FromHours(24), "00:00:00", nameof(DestinationPolicy.IdleTimeout));
        public static readonly PolicyKey LoadBalancer = Choice("LoadBalancer", LoadBalancerKind.PeakEwma, nameof(DestinationPolicy.LoadBalancer));
        public static readonly PolicyKey FailurePenalty = Duration("FailurePenalty", TimeSpan.Zero, TimeSpan.FromMinutes(1), "00:00:01", nameof(DestinationPolicy.FailurePenalty));

        public static readonly PolicyKey SubsetKey = Text("SubsetKey", "an endpoint metadata key", ["version", "track"], nameof(DestinationPolicy.SubsetKey), "version");

        public static readonly PolicyKey Routes = new()
        {
            Name = "Routes",
            Kind = PolicyValueKind.List,
            Properties = [nameof(DestinationPolicy.Routes)],
            Item = RouteKeys.Section,
        };

        /// <summary>Gets the <c>Defaults</c> section: every destination setting but routes.</summary>
        public static readonly PolicyKey Defaults = new()
        {
            Name = "Defaults",
            Kind = PolicyValueKind.Section,
            Record = typeof(DestinationPolicy),
            Properties = [nameof(PolicySnapshot.Defaults)],
            Keys = [Timeout, AttemptTimeout, IdleTimeout, RetryKeys.Section, ConcurrencyKeys.Section, OutlierKeys.Section, LoadBalancer, FailurePenalty, SubsetKey],
        };

        /// <summary>Gets one destination's section (the item of <c>Destinations</c>), named by the host mesh clients call.</summary>
        public static readonly PolicyKey Section = new()
        {
            Name = "<name>",
            Kind = PolicyValueKind.Section,
            Record = typeof(DestinationPolicy),
            KeyProperties = [nameof(DestinationPolicy.Destination)],
            Keys = [.. Defaults.Keys, Routes],
        };
    }

    /// <summary><c>Routes:&lt;n&gt;</c>: one route (<see cref="RoutePolicy"/>).</summary>
    internal static class RouteKeys
    {
        public static readonly PolicyKey Name = Text("Name", "the route's name in logs, metrics and meshctl (`route-<n>` when unnamed)", ["canary", "beta"], nameof(RoutePolicy.Name));

        public static readonly PolicyKey Split = new()
        {
            Name = "Split",
            Kind = PolicyValueKind.Map,
            Text = "the subset's relative weight (a subset: the endpoints whose SubsetKey metadata has that value, such as v1)",
            Examples = ["v1", "v2"],
            Record = typeof(SubsetSplit),
            Properties = [nameof(RoutePolicy.Split)],
            Derived = ImmutableDictionary<string, string>.Empty.Add(nameof(SubsetSplit.Total), "the sum of the weights"),
            Item = new()
            {
                Name = "<subset>",
                Kind = PolicyValueKind.Integer,
                Minimum = 0,
                Maximum = 1_000_000,
                Required = true,
                Properties = [nameof(SubsetSplit.Weights)],
                KeyProperties = [nameof(SubsetSplit.Subsets)],
            },
        };

        public static readonly PolicyKey SubsetKey = Text("SubsetKey", "an endpoint metadata key (the destination's `SubsetKey` when left out)", ["version", "track"], nameof(RoutePolicy.SubsetKey));

        public static readonly PolicyKey Section = new()
        {
            Name = "<n>",
            Kind = PolicyValueKind.Section,
            Record = typeof(RoutePolicy),
            Derived = ImmutableDictionary<string, string>.Empty.Add(nameof(RoutePolicy.Index), "the route's place in Routes"),
            Keys = [Name, MatchKeys.Section, Split, SubsetKey, MirrorKeys.Section, FaultKeys.Section, CanaryKeys.Section],
        };
    }

    /// <summary><c>Routes:&lt;n&gt;:Canary</c>: an automated canary (<see cref="CanaryPolicy"/>), analysed by the control service.</summary>
    internal static class CanaryKeys
    {
        public static readonly PolicyKey StableSubset = Text("StableSubset", "the subset that serves the route's traffic today; one of the route's two Split subsets", ["v1", "stable"], nameof(CanaryPolicy.StableSubset), required: true);
        public static readonly PolicyKey CanarySubset = Text("CanarySubset", "the subset under test; the other Split subset", ["v2", "canary"], nameof(CanaryPolicy.CanarySubset), required: true);

        public static readonly PolicyKey Steps = new()
        {
            Name = "Steps",
            Kind = PolicyValueKind.List,
            Text = "the canary's weights in percent, rising (Argo Rollouts' setWeight); or StepWeight and MaxWeight",
            Properties = [nameof(CanaryPolicy.Steps)],
            Item = new() { Name = "<n>", Kind = PolicyValueKind.Integer, Minimum = 1, Maximum = 100 },
        };

        public static readonly PolicyKey StepWeight = Integer("StepWeight", 1, 100, "10", nameof(CanaryPolicy.Steps));
        public static readonly PolicyKey MaxWeight = Integer("MaxWeight", 1, 100, "50", nameof(CanaryPolicy.Steps));
        public static readonly PolicyKey Interval = Duration("Interval", TimeSpan.FromSeconds(1), TimeSpan.FromHours(1), "00:01:00", nameof(CanaryPolicy.Interval));
        public static readonly PolicyKey MinRequests = Integer("MinRequests", 0, 1_000_000, "20", nameof(CanaryPolicy.MinRequests));
        public static readonly PolicyKey MinSuccessRate = Number("MinSuccessRate", 0, 100, "99", nameof(CanaryPolicy.MinSuccessRate));
        public static readonly PolicyKey MaxSuccessRateDrop = Number("MaxSuccessRateDrop", 0, 100, null, nameof(CanaryPolicy.MaxSuccessRateDrop));
        public static readonly PolicyKey MaxP99 = Duration("MaxP99", TimeSpan.FromMilliseconds(1), TimeSpan.FromMinutes(10), "00:00:00.500", nameof(CanaryPolicy.MaxP99));
        public static readonly PolicyKey MaxP99Increase = Number("MaxP99Increase", 1, 1000, null, nameof(CanaryPolicy.MaxP99Increase));
        public static readonly PolicyKey FailedChecks = Integer("FailedChecks", 1, 100, "5", nameof(CanaryPolicy.FailedChecks));
        public static readonly PolicyKey Promote = new() { Name = "Promote", Kind = PolicyValueKind.Boolean, Default = "true", Properties = [nameof(CanaryPolicy.Promote)] };

        public static readonly PolicyKey Section = new()
        {
            Name = "Canary",
            Kind = PolicyValueKind.Section,
            Record = typeof(CanaryPolicy),
            Properties = [nameof(RoutePolicy.Canary)],
            Keys = [StableSubset, CanarySubset, Steps, StepWeight, MaxWeight, Interval, MinRequests, MinSuccessRate, MaxSuccessRateDrop, MaxP99, MaxP99Increase, FailedChecks, Promote],
        };
    }

    /// <summary><c>Routes:&lt;n&gt;:Match</c>: what a route matches (<see cref="RouteMatch"/>).</summary>
    internal static class MatchKeys
    {
        public static readonly PolicyKey Methods = new()
        {
            Name = "Methods",
            Kind = PolicyValueKind.List,
            Properties = [nameof(RouteMatch.Methods)],
            Item = HttpMethod,
        };

        public static readonly PolicyKey Section = new()
        {
            Name = "Match",
            Kind = PolicyValueKind.Section,
            Record = typeof(RouteMatch),
            Properties = [nameof(RoutePolicy.Match)],
            Keys = [PathKeys.Section, GrpcKeys.Method, Methods, HeaderKeys.Section],
        };

        /// <summary>Gets <c>Match:Grpc</c>, a shorthand for the path of a gRPC method or service (<see cref="GrpcKeys.Method"/>).</summary>
        public static PolicyKey Grpc => GrpcKeys.Method;
    }

    /// <summary><c>Match:Path</c>: exactly one way to match the path, or a string for a prefix; kept in <see cref="RouteMatch"/>.</summary>
    internal static class PathKeys
    {
        public static readonly PolicyKey Prefix = Text("Prefix", "a path starting with '/', matched at segment boundaries", ["/api", "/v2"], nameof(RouteMatch.PathKind)) with
        {
            Properties = [nameof(RouteMatch.PathKind), nameof(RouteMatch.Path)],
        };

        public static readonly PolicyKey Exact = Text("Exact", "a path starting with '/'", ["/api/slow", "/health"], nameof(RouteMatch.PathKind)) with
        {
            Properties = [nameof(RouteMatch.PathKind), nameof(RouteMatch.Path)],
        };

        public static readonly PolicyKey Regex = Text("Regex", "a regular expression matched against the whole path (non-backtracking)", ["/items/[0-9]+", "/v[12]/.*"], nameof(RouteMatch.PathKind)) with
        {
            Properties = [nameof(RouteMatch.PathKind), nameof(RouteMatch.Path), nameof(RouteMatch.PathPattern)],
        };

        public static readonly PolicyKey Section = new()
        {
            Name = "Path",
            Kind = PolicyValueKind.Section,
            Shorthand = true,
            Text = "a string (a path starting with '/') is shorthand for `Prefix`",
            Keys = [Prefix, Exact, Regex],
        };
    }

    /// <summary><c>Match:Headers:&lt;header&gt;</c>: a condition on a header (<see cref="HeaderMatch"/>), or a string for an exact match.</summary>
    internal static class HeaderKeys
    {
        public static readonly PolicyKey Exact = Text("Exact", "the value", ["yes", "no"], nameof(HeaderMatch.Kind)) with { Properties = [nameof(HeaderMatch.Kind), nameof(HeaderMatch.Value)] };
        public static readonly PolicyKey Prefix = Text("Prefix", "the start of the value", ["bob", "alice"], nameof(HeaderMatch.Kind)) with { Properties = [nameof(HeaderMatch.Kind), nameof(HeaderMatch.Value)] };

        public static readonly PolicyKey Regex = Text("Regex", "a regular expression matched against the whole value (non-backtracking)", ["[0-9]+", "beta-.*"], nameof(HeaderMatch.Kind)) with
        {
            Properties = [nameof(HeaderMatch.Kind), nameof(HeaderMatch.Value), nameof(HeaderMatch.Pattern)],
        };

        /// <summary>Gets <c>Present</c>: only <c>true</c> is valid.</summary>
        public static readonly PolicyKey Present = new()
        {
            Name = "Present",
            Kind = PolicyValueKind.Boolean,
            Text = "`true`: the header is there, whatever its value",
            Properties = [nameof(HeaderMatch.Kind)],
        };

        /// <summary>Gets one header's condition, the item of <c>Headers</c>.</summary>
        public static readonly PolicyKey Item = new()
        {
            Name = "<header>",
            Kind = PolicyValueKind.Section,
            Shorthand = true,
            Text = "a string is shorthand for `Exact`",
            Record = typeof(HeaderMatch),
            KeyProperties = [nameof(HeaderMatch.Name)],
            Keys = [Prefix, Exact, Regex, Present],
        };

        public static readonly PolicyKey Section = new()
        {
            Name = "Headers",
            Kind = PolicyValueKind.Map,
            Text = "header names, each with one condition",
            Examples = ["x-beta", "x-user"],
            Properties = [nameof(RouteMatch.Headers)],
            Item = Item,
        };
    }

    /// <summary><c>Routes:&lt;n&gt;:Mirror</c>: copies of matched requests (<see cref="MirrorPolicy"/>).</summary>
    internal static class MirrorKeys
    {
        public static readonly PolicyKey Subset = Text("Subset", "the subset that receives the copies", ["shadow", "v2"], nameof(MirrorPolicy.Subset), required: true);
        public static readonly PolicyKey Percent = Number("Percent", 0, 100, "100", nameof(MirrorPolicy.Percent));

        public static readonly PolicyKey Section = new()
        {
            Name = "Mirror",
            Kind = PolicyValueKind.Section,
            Record = typeof(MirrorPolicy),
            Properties = [nameof(RoutePolicy.Mirror)],
            Keys = [Subset, Percent],
        };
    }

    /// <summary><c>Routes:&lt;n&gt;:Fault</c>: injected faults (<see cref="FaultPolicy"/>).</summary>
    internal static class FaultKeys
    {
        public static readonly PolicyKey Section = new()
        {
            Name = "Fault",
            Kind = PolicyValueKind.Section,
            Record = typeof(FaultPolicy),
            Properties = [nameof(RoutePolicy.Fault)],
            Keys = [DelayKeys.Section, AbortKeys.Section],
        };
    }

    /// <summary><c>Fault:Delay</c>, kept in <see cref="FaultPolicy"/>.</summary>
    internal static class DelayKeys
    {
        public static readonly PolicyKey Percent = Number("Percent", 0, 100, "100", nameof(FaultPolicy.DelayPercent));
        public static readonly PolicyKey Duration = PolicyModel.Duration("Duration", TimeSpan.Zero, TimeSpan.FromMinutes(10), null, nameof(FaultPolicy.Delay), required: true);

        public static readonly PolicyKey Section = new() { Name = "Delay", Kind = PolicyValueKind.Section, Keys = [Percent, Duration] };
    }

    /// <summary><c>Fault:Abort</c>, kept in <see cref="FaultPolicy"/>.</summary>
    internal static class AbortKeys
    {
        public static readonly PolicyKey Percent = Number("Percent", 0, 100, "100", nameof(FaultPolicy.AbortPercent));
        public static readonly PolicyKey Status = Integer("Status", 200, 599, null, nameof(FaultPolicy.AbortStatus), required: true);

        public static readonly PolicyKey Section = new() { Name = "Abort", Kind = PolicyValueKind.Section, Keys = [Percent, Status] };
    }

    /// <summary><c>Mesh:Policy</c>: the traffic policy, kept in <see cref="PolicySnapshot"/>.</summary>
    internal static class PolicyKeys
    {
        public static readonly PolicyKey Destinations = new()
        {
            Name = "Destinations",
            Kind = PolicyValueKind.Map,
            Text = "the hosts mesh clients call (orders, or orders.payments for another namespace), each with its policy",
            Examples = ["orders", "inventory.shop"],
            Properties = [nameof(PolicySnapshot.Destinations)],
            Item = DestinationKeys.Section,
        };

        public static readonly PolicyKey SubsetHeader = Text(
            "SubsetHeader", "a header name, or empty to turn the override off", ["x-mesh-subset", "x-canary"], nameof(PolicySnapshot.SubsetHeader), "x-mesh-subset");

        public static readonly PolicyKey Section = new()
        {
            Name = "Policy",
            Kind = PolicyValueKind.Section,
            Keys = [DestinationKeys.Defaults, Destinations, SubsetHeader],
        };
    }

    /// <summary><c>Mesh:Authorization</c>: the serving side's rules (<see cref="MeshAuthorizationPolicy"/>).</summary>
    internal static class AuthorizationKeys
    {
        public static readonly PolicyKey DefaultAction = Choice("DefaultAction", AuthorizationAction.Deny, nameof(MeshAuthorizationPolicy.DefaultAction));

        public static readonly PolicyKey Rules = new()
        {
            Name = "Rules",
            Kind = PolicyValueKind.List,
            Properties = [nameof(MeshAuthorizationPolicy.Rules)],
            Item = RuleKeys.Section,
        };

        public static readonly PolicyKey Section = new()
        {
            Name = "Authorization",
            Kind = PolicyValueKind.Section,
            Record = typeof(MeshAuthorizationPolicy),
            Properties = [nameof(PolicySnapshot.Authorization)],
            Derived = ImmutableDictionary<string, string>.Empty.Add(nameof(MeshAuthorizationPolicy.Enabled), "on when the Authorization section is there"),
            Keys = [DefaultAction, Rules],
        };
    }

    /// <summary><c>Rules:&lt;n&gt;</c>: one authorization rule (<see cref="AuthorizationRule"/>).</summary>
    internal static class RuleKeys
    {
        public static readonly PolicyKey Name = Text("Name", "the rule's name in denials, logs and metrics (`rule-<n>` when unnamed)", ["frontend-reads", "probes"], nameof(AuthorizationRule.Name));
        public static readonly PolicyKey Action = Choice("Action", AuthorizationAction.Allow, nameof(AuthorizationRule.Action));

        public static readonly PolicyKey Section = new()
        {
            Name = "<n>",
            Kind = PolicyValueKind.Section,
            Record = typeof(AuthorizationRule),
            Derived = ImmutableDictionary<string, string>.Empty.Add(nameof(AuthorizationRule.Index), "the rule's place in Rules"),
            Keys = [Name, Action, FromKeys.Section, ToKeys.Section, RateLimitKeys.Section],
        };
    }

    /// <summary><c>Rules:&lt;n&gt;:From</c>: which callers a rule applies to (<see cref="CallerMatch"/>).</summary>
    internal static class FromKeys
    {
        public static readonly PolicyKey Services = Strings("Services", "a service name (any namespace) or `namespace/service`", ["frontend", "shop/frontend"], nameof(CallerMatch.Services));
        public static readonly PolicyKey Namespaces = Strings("Namespaces", "a namespace", ["shop", "default"], nameof(CallerMatch.Namespaces));

        public static readonly PolicyKey SpiffeIds = Strings(
            "SpiffeIds", "a SPIFFE ID, or a prefix ending in `*`", ["spiffe://mesh.local/ns/shop/svc/frontend", "spiffe://mesh.local/ns/shop/*"], nameof(CallerMatch.SpiffeIds));

        public static readonly PolicyKey Public = new() { Name = "Public", Kind = PolicyValueKind.Boolean, Default = "false", Properties = [nameof(CallerMatch.Public)] };

        public static readonly PolicyKey Section = new()
        {
            Name = "From",
            Kind = PolicyValueKind.Section,
            Record = typeof(CallerMatch),
            Properties = [nameof(AuthorizationRule.From)],
            Derived = ImmutableDictionary<string, string>.Empty.Add(nameof(CallerMatch.Any), "true when the rule has no From"),
            Keys = [Services, Namespaces, SpiffeIds, Public],
        };
    }

    /// <summary><c>Rules:&lt;n&gt;:To</c>: which requests a rule applies to (<see cref="RequestMatch"/>).</summary>
    internal static class ToKeys
    {
        /// <summary>Gets <c>To:Grpc</c>, a shorthand for paths of gRPC methods and services (<see cref="GrpcKeys.Methods"/>).</summary>
        public static PolicyKey Grpc => GrpcKeys.Methods;

        public static readonly PolicyKey Paths = Strings("Paths", "a route template or path starting with '/', a prefix such as `/api/*`, or `*`", ["/api/*", "/health"], nameof(RequestMatch.Paths));

        public static readonly PolicyKey Methods = new()
        {
            Name = "Methods",
            Kind = PolicyValueKind.List,
            Properties = [nameof(RequestMatch.Methods)],
            Item = HttpMethod,
        };

        public static readonly PolicyKey Section = new()
        {
            Name = "To",
            Kind = PolicyValueKind.Section,
            Record = typeof(RequestMatch),
            Properties = [nameof(AuthorizationRule.To)],
            Keys = [Paths, Grpc, Methods],
        };
    }

    /// <summary>
    /// gRPC names as shorthands for paths: a method (<c>package.Service/Method</c>) is the path <c>/package.Service/Method</c>,
    /// a whole service (<c>package.Service</c> or <c>package.Service/*</c>) the prefix <c>/package.Service</c> of its methods'.
    /// </summary>
    internal static class GrpcKeys
    {
        /// <summary>The forms of a gRPC name, in words.</summary>
        public const string Forms = "a gRPC method `package.Service/Method`, or a whole service `package.Service` (or `package.Service/*`)";

        /// <summary>Gets <c>Routes:&lt;n&gt;:Match:Grpc</c>: one method (an exact path) or service (a path prefix).</summary>
        public static readonly PolicyKey Method = Text("Grpc", Forms + ": shorthand for `Path`", ["inventory.v1.Inventory/Reserve", "inventory.v1.Inventory"], nameof(RouteMatch.PathKind)) with
        {
            Properties = [nameof(RouteMatch.PathKind), nameof(RouteMatch.Path)],
        };

        /// <summary>Gets <c>Rules:&lt;n&gt;:To:Grpc</c>: methods and services, added to the rule's paths.</summary>
        public static readonly PolicyKey Methods = Strings("Grpc", Forms + "; added to `Paths`", ["inventory.v1.Inventory/Reserve", "inventory.v1.Inventory"], nameof(RequestMatch.Paths));
    }

    /// <summary><c>Rules:&lt;n&gt;:RateLimit</c>: a per-caller rate limit (<see cref="RateLimitPolicy"/>).</summary>
    internal static class RateLimitKeys
    {
        public static readonly PolicyKey PermitsPerSecond = Number("PermitsPerSecond", 0.001, 1_000_000, null, nameof(RateLimitPolicy.PermitsPerSecond), required: true);
        public static readonly PolicyKey Burst = Integer("Burst", 1, 1_000_000, "1", nameof(RateLimitPolicy.Burst));
        public static readonly PolicyKey MaxCallers = Integer("MaxCallers", 1, 10_000_000, "100000", nameof(RateLimitPolicy.MaxCallers));

        public static readonly PolicyKey Section = new()
        {
            Name = "RateLimit",
            Kind = PolicyValueKind.Section,
            Record = typeof(RateLimitPolicy),
            Properties = [nameof(AuthorizationRule.RateLimit)],
            Keys = [PermitsPerSecond, Burst, MaxCallers],
        };
    }

    /// <summary>The <c>Mesh</c> section's policy parts, as a <see cref="PolicySnapshot"/>.</summary>
    internal static class MeshKeys
    {
        public static readonly PolicyKey Section = new()
        {
            Name = "Mesh",
            Kind = PolicyValueKind.Section,
            Record = typeof(PolicySnapshot),
            Derived = ImmutableDictionary<string, string>.Empty.Add(nameof(PolicySnapshot.Version), "a hash of the policy's keys and values"),
            Keys = [PolicyKeys.Section, AuthorizationKeys.Section],
        };
    }
}
