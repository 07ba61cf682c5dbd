using System.CommandLine;
using System.Globalization;
using MeshKit.Cli.ControlPlane;
using MeshKit.Consul;
using MeshKit.Discovery;
using MeshKit.Identity;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Spectre.Console;

namespace MeshKit.Cli.Why;

/// <summary><c>meshctl why</c>: which route, subset, endpoints and authorization rule a request meets, and where each input came from.</summary>
internal static class WhyCommand
{
    public static Command Create(GlobalOptions options, CliEnvironment environment)
    {
        var from = new Option<string>("--from") { Description = "The calling service (frontend, or frontend.payments outside the default namespace).", Required = true, HelpName = "service" };
        var to = new Option<string>("--to") { Description = "The destination as the caller calls it (orders, or orders.payments).", Required = true, HelpName = "destination" };
        var path = new Option<string>("--path") { Description = "The request path, as the caller sends it.", Required = true };
        var method = new Option<string>("--method") { Description = "The request method.", DefaultValueFactory = _ => "GET" };
        var header = new Option<string[]>("--header", "-H") { Description = "A request header, name=value (repeatable); the subset override header (x-mesh-subset) too.", HelpName = "name=value", AllowMultipleArgumentsPerToken = false };
        var config = new Option<FileInfo[]>("--config") { Description = "The caller's appsettings file(s), later ones overriding earlier ones as in the host: its local Mesh:Policy and Mesh:Discovery:Static.", HelpName = "appsettings.json" };
        var destConfig = new Option<FileInfo[]>("--dest-config") { Description = "The destination's appsettings file(s): its local Mesh:Authorization (a central Authorization replaces it).", HelpName = "appsettings.json" };
        var consul = new Option<Uri?>("--consul")
        {
            Description = "Also list the destination's passing instances in Consul at this address (http://127.0.0.1:8500). Token: $CONSUL_HTTP_TOKEN.",
            HelpName = "url",
            CustomParser = result =>
            {
                var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : string.Empty;
                if (Uri.TryCreate(text, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps))
                {
                    return uri;
                }

                result.AddError($"--consul '{text}' is not an http:// or https:// address.");
                return null;
            },
        };
        var routeTemplate = new Option<string?>("--route-template") { Description = "The route template of the destination endpoint the path routes to (/api/orders/{id}); authorization rules match it rather than the raw path. Default: the normalised path.", HelpName = "template" };
        var offline = new Option<bool>("--offline") { Description = "Do not ask the control service (no central policy, no ejections): explain from the given files only." };
        var command = new Command("why", "Explain a request from one service to another with the runtime's own route matcher, split, and authorization evaluator: the matched route, the subset and its weight (or the header override), the candidate endpoints and which are ejected, and the authorization decision and its rule. Exit 1 when the call would fail (denied, no endpoints, invalid policy).")
        {
            from, to, path, method, header, config, destConfig, consul, routeTemplate, offline,
        };

        command.SetBody(options, environment, async (context, cancellationToken) =>
        {
            var inputs = await GatherAsync(
                context,
                context.Value(from)!,
                context.Value(to)!,
                context.Value(method)!.ToUpperInvariant(),
                context.Value(path)!,
                ParseHeaders(context.Value(header) ?? []),
                context.Value(config) ?? [],
                context.Value(destConfig) ?? [],
                context.Value(consul),
                context.Value(routeTemplate),
                context.Value(offline),
                cancellationToken).ConfigureAwait(false);
            var report = WhyExplainer.Explain(inputs);
            if (context.Json)
            {
                context.WriteJson(report);
            }
            else
            {
                Render(context.Console, report);
            }

            return report.Outcome.Result is "ok" or "unknown" ? ExitCodes.Ok : ExitCodes.Findings;
        });
        return command;
    }

    private static async Task<WhyInputs> GatherAsync(
        CommandContext context,
        string from,
        string to,
        string method,
        string path,
        Dictionary<string, string> headers,
        FileInfo[] config,
        FileInfo[] destConfig,
        Uri? consul,
        string? routeTemplate,
        bool offline,
        CancellationToken cancellationToken)
    {
        CheckKey("--from", from);
        CheckKey("--to", to);
        var notes = new List<string>();
        var callerConfiguration = Load(config);
        var destinationConfiguration = Load(destConfig);
        var (callerNamespace, callerService) = WhyExplainer.SplitKey(from, callerConfiguration["Mesh:Service:Namespace"] ?? SpiffeId.DefaultNamespace);
        var (destinationNamespace, destinationService) = WhyExplainer.SplitKey(to, callerNamespace);
        var callerKey = Key(callerService, callerNamespace);
        var destinationKey = Key(destinationService, destinationNamespace);

        // The control service: central documents and the caller's reported ejections, when it can be reached.
        string? callerCentral = null, destinationCentral = null, trustDomain = null;
        IReadOnlyList<WorkloadEntry>? instances = null;
        string callerCentralSource, destinationCentralSource, ejectionSource;
        var consulted = false;
        if (offline)
        {
            callerCentralSource = destinationCentralSource = ejectionSource = "not consulted (--offline)";
        }
        else
        {
            try
            {
                using var api = context.CreateApi(TimeSpan.FromSeconds(15));
                var workloads = await api.GetWorkloadsAsync(cancellationToken).ConfigureAwait(false);
                trustDomain = workloads.TrustDomain;
                instances = workloads.Workloads;
                var callerDocument = await api.GetPolicyAsync(callerKey, cancellationToken).ConfigureAwait(false);
                var destinationDocument = await api.GetPolicyAsync(destinationKey, cancellationToken).ConfigureAwait(false);
                consulted = true;
                callerCentral = callerDocument?.Json;
                destinationCentral = destinationDocument?.Json;
                callerCentralSource = Describe(api.Address, callerKey, callerDocument);
                destinationCentralSource = Describe(api.Address, destinationKey, destinationDocument);
                var callerId = trustDomain is null ? null : SpiffeId.Create(trustDomain, callerNamespace, callerService).Value;
                var reporting = instances.Where(w => w.SpiffeId == callerId).ToList();
                ejectionSource = reporting.Count == 0
                    ? $"{api.Address}v1/workloads: no instance of {callerKey} has reported"
                    : $"{api.Address}v1/workloads: ejectedEndpoints of {string.Join(", ", reporting.Select(w => $"{w.Instance ?? "?"} (reported {Durations.Format(DateTimeOffset.UtcNow - w.LastSeen)} ago)"))}";
            }
            catch (MeshctlException ex) when (ex.ExitCode is ExitCodes.Unreachable or ExitCodes.Unauthorized or ExitCodes.Usage)
            {
                var reason = $"not consulted: {ex.Message}";
                callerCentralSource = destinationCentralSource = ejectionSource = reason;
                context.Warn($"the control service was not consulted, so central policy and ejections are not part of this explanation ({ex.Message}). Use --offline to explain from files on purpose.");
            }
        }

        // Trust domain: as given, else the control service's, else the caller's settings, else the bundle's, else the default.
        string trustDomainSource;
        if (context.ControlPlane.TrustDomain is { } givenDomain)
        {
            (trustDomain, trustDomainSource) = (givenDomain, "--trust-domain");
        }
        else if (trustDomain is not null)
        {
            trustDomainSource = "the control service";
        }
        else if (callerConfiguration["Mesh:TrustDomain"] is { Length: > 0 } configured)
        {
            (trustDomain, trustDomainSource) = (configured, "Mesh:TrustDomain of --config");
        }
        else if (context.ControlPlane.Bundle is { } bundle && ControlPlaneSettings.TrustDomainOf(bundle) is { } fromBundle)
        {
            (trustDomain, trustDomainSource) = (fromBundle, "the trust bundle's roots");
        }
        else
        {
            (trustDomain, trustDomainSource) = ("mesh.local", "MeshKit's default");
        }

        // Endpoints: the static section of the caller's configuration, then Consul when asked.
        var endpoints = new List<SourcedEndpoint>();
        var discovery = new List<string>();
        var errors = new List<string>();
        if (config.Length > 0)
        {
            var found = StaticDiscovery.Read(callerConfiguration, to, errors);
            endpoints.AddRange(found.Select(e => new SourcedEndpoint(e, "static")));
            discovery.Add($"{StaticDiscovery.SectionPath}:{to} of --config ({found.Count})");
            notes.AddRange(errors.Select(e => "Left out by discovery: " + e));
        }

        if (consul is not null)
        {
            var consulName = Key(destinationService, destinationNamespace);
            var found = await ReadConsulAsync(consul, consulName, context, cancellationToken).ConfigureAwait(false);
            endpoints.AddRange(found.Select(e => new SourcedEndpoint(e, "consul")));
            discovery.Add($"Consul {consul} service '{consulName}', passing instances ({found.Count})");
        }

        return new WhyInputs
        {
            From = from,
            To = to,
            Method = method,
            Path = path,
            Headers = headers,
            CallerConfiguration = callerConfiguration,
            CallerConfigurationGiven = config.Length > 0,
            CallerConfigurationSource = Files(config),
            CallerCentral = callerCentral,
            CallerCentralSource = callerCentralSource,
            CentralConsulted = consulted,
            DestinationConfiguration = destinationConfiguration,
            DestinationConfigurationGiven = destConfig.Length > 0,
            DestinationConfigurationSource = Files(destConfig),
            DestinationCentral = destinationCentral,
            DestinationCentralSource = destinationCentralSource,
            TrustDomain = trustDomain,
            TrustDomainSource = trustDomainSource,
            Endpoints = endpoints,
            DiscoveryKnown = discovery.Count > 0,
            DiscoverySource = discovery.Count == 0 ? "none (give --config with Mesh:Discovery:Static, or --consul)" : string.Join("; ", discovery),
            CallerInstances = instances,
            EjectionSource = ejectionSource,
            RouteTemplate = routeTemplate,
            Notes = notes,
        };
    }

    private static async Task<IReadOnlyList<DiscoveredEndpoint>> ReadConsulAsync(Uri address, string service, CommandContext context, CancellationToken cancellationToken)
    {
        var settings = new ConsulOptions { Address = address, Token = context.Environment.GetVariable("CONSUL_HTTP_TOKEN") };
        try
        {
            using var client = new ConsulClient(Microsoft.Extensions.Options.Options.Create(settings), NullLoggerFactory.Instance);
            var answer = await client.GetHealthServiceAsync(service, ConsulHealthQuery.Passing, cancellationToken).ConfigureAwait(false);
            var list = new List<DiscoveredEndpoint>();
            foreach (var entry in answer.Value)
            {
                // Instances the runtime cannot call (no port, no usable address) are left out, as the Consul provider does.
                var host = entry.EffectiveAddress;
                var port = entry.Service.Port;
                System.Net.EndPoint? endPoint = port is <= 0 or > 65535 ? null
                    : System.Net.IPAddress.TryParse(host.Trim('[', ']'), out var ip) ? new System.Net.IPEndPoint(ip, port)
                    : Uri.CheckHostName(host) == UriHostNameType.Dns ? new System.Net.DnsEndPoint(host, port)
                    : null;
                if (endPoint is null)
                {
                    context.Warn($"Consul instance {entry.Service.Id} of '{service}' has address '{host}' and port {port}, which cannot be called; it is left out.");
                    continue;
                }

                // The same reading of Meta the Consul provider does: version, zone, and weight in MeshKit's units (default 100).
                var meta = new Dictionary<string, string>(entry.Service.Meta, StringComparer.Ordinal);
                var weight = meta.TryGetValue("weight", out var w) && int.TryParse(w, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) && parsed <= 1_000_000
                    ? parsed
                    : (int)Math.Clamp((long)(entry.Service.Weights?.Passing ?? 1) * MeshEndpointMetadata.DefaultWeight, 0, 1_000_000);
                var metadata = new MeshEndpointMetadata(
                    meta.TryGetValue("version", out var v) && v.Length > 0 ? v : null,
                    meta.TryGetValue("zone", out var z) && z.Length > 0 ? z : null,
                    weight,
                    meta);
                list.Add(new DiscoveredEndpoint(DiscoveredEndpoint.KeyOf(endPoint), endPoint, metadata));
            }

            return list;
        }
        catch (Exception ex) when (ex is ConsulException or HttpRequestException or TaskCanceledException or Microsoft.Extensions.Options.OptionsValidationException)
        {
            throw new MeshctlException(ExitCodes.Unreachable, $"Consul at {address} could not be asked for '{service}': {ex.GetBaseException().Message}", ex);
        }
    }

    private static IConfiguration Load(FileInfo[] files)
    {
        var builder = new ConfigurationBuilder();
        foreach (var file in files)
        {
            if (!file.Exists)
            {
                throw new MeshctlException(ExitCodes.Usage, $"The configuration file '{file.FullName}' does not exist.");
            }

            builder.AddJsonFile(file.FullName, optional: false, reloadOnChange: false);
        }

        try
        {
            return builder.Build();
        }
        catch (Exception ex) when (ex is FormatException or InvalidDataException or IOException)
        {
            throw new MeshctlException(ExitCodes.Usage, $"A configuration file could not be read: {ex.GetBaseException().Message}", ex);
        }
    }

    private static Dictionary<string, string> ParseHeaders(string[] values)
    {
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var value in values)
        {
            var split = value.IndexOfAny(['=', ':']);
            if (split <= 0)
            {
                throw new MeshctlException(ExitCodes.Usage, $"--header '{value}' is not name=value.");
            }

            headers[value[..split].Trim()] = value[(split + 1)..].Trim();
        }

        return headers;
    }

    private static void CheckKey(string option, string key)
    {
        var (ns, service) = WhyExplainer.SplitKey(key, SpiffeId.DefaultNamespace);
        if (!SpiffeId.IsValidName(service, out var error) || !SpiffeId.IsValidName(ns, out error))
        {
            throw new MeshctlException(ExitCodes.Usage, $"{option} '{key}' is not a service name (service, or service.namespace): {error}");
        }
    }

    private static string Key(string service, string ns) => ns == SpiffeId.DefaultNamespace ? service : $"{service}.{ns}";

    private static string Files(FileInfo[] files) => files.Length == 0 ? "none given" : string.Join(", ", files.Select(f => f.FullName));

    private static string Describe(Uri address, string key, StoredPolicy? document) =>
        document is null ? $"none stored for '{key}' at {address}" : $"'{key}' version {document.Version} from {address}";

    private static void Render(IAnsiConsole console, WhyReport report)
    {
        var r = report.Request;
        var headers = r.Headers.Count == 0 ? string.Empty : " with " + string.Join(", ", r.Headers.Select(h => $"{h.Key}: {h.Value}"));
        console.MarkupLine($"[bold]{Markup.Escape($"{r.Method} {r.Path}")}[/]{Markup.Escape(headers)} from [bold]{Markup.Escape(r.CallerSpiffeId)}[/] to [bold]{Markup.Escape(r.To)}[/] ({Markup.Escape(r.DestinationSpiffeId)})");
        console.WriteLine();

        var grid = new Grid().AddColumn(new GridColumn().NoWrap()).AddColumn();
        if (report.Route is { } route)
        {
            grid.AddRow("[bold]Route[/]", Markup.Escape(route.Matched
                ? $"{route.Name} (route {route.Index + 1} of {route.RoutesTried} in {route.PolicyFrom}): {route.Match}"
                : $"default: {route.Match} in {route.PolicyFrom}, so every endpoint of the destination is used"));
        }

        if (report.Subset is { } subset)
        {
            grid.AddRow("[bold]Subset[/]", Markup.Escape(DescribeSubset(subset)));
        }

        if (report.Fault is not null)
        {
            grid.AddRow("[bold]Fault[/]", Markup.Escape(report.Fault));
        }

        if (report.Mirror is not null)
        {
            grid.AddRow("[bold]Mirror[/]", Markup.Escape(report.Mirror));
        }

        var a = report.Authorization;
        var decisionColor = a.Decision switch { "allow" => "green", "deny" => "red", _ => "yellow" };
        grid.AddRow("[bold]Authorization[/]", $"[{decisionColor}]{Markup.Escape(a.Decision)}[/]" + Markup.Escape(
            (a.Rule is null ? string.Empty : $" by {(a.Rule is "default" or "off" ? a.Rule : $"rule '{a.Rule}'")}") + $" (target {a.Target}): {a.Reason}" + (a.RateLimit is null ? string.Empty : $" Rate limit: {a.RateLimit}.")));
        var outcomeColor = report.Outcome.Result switch { "ok" => "green", "unknown" => "yellow", _ => "red" };
        grid.AddRow("[bold]Outcome[/]", $"[{outcomeColor}]{Markup.Escape(report.Outcome.Result)}[/]: {Markup.Escape(report.Outcome.Summary)}");
        console.Write(grid);

        if (report.Endpoints.Count > 0)
        {
            console.WriteLine();
            var table = new Table().Border(TableBorder.Rounded).Title("Endpoints").AddColumns("Endpoint", report.Subset?.Key ?? "subset", "Zone", "Weight", "Candidate", "Ejected by", "Source");
            foreach (var e in report.Endpoints)
            {
                table.AddRow(
                    Markup.Escape(e.Address),
                    Markup.Escape(e.SubsetValue ?? "-"),
                    Markup.Escape(e.Zone ?? "-"),
                    e.Weight.ToString(CultureInfo.InvariantCulture),
                    e.Candidate ? "[green]yes[/]" : "no",
                    e.EjectedBy.Count == 0 ? "-" : $"[red]{Markup.Escape(string.Join(", ", e.EjectedBy))}[/]",
                    Markup.Escape(e.Source));
            }

            console.Write(table);
        }

        foreach (var error in report.PolicyErrors)
        {
            console.MarkupLine($"[red]policy error[/] {Markup.Escape(error)}");
        }

        foreach (var note in report.Notes)
        {
            console.MarkupLine($"[grey]note[/] {Markup.Escape(note)}");
        }

        console.WriteLine();
        var sources = new Table().Border(TableBorder.Rounded).Title("Where each input came from").AddColumns("Input", "Source");
        foreach (var source in report.Sources)
        {
            sources.AddRow(Markup.Escape(source.Input), Markup.Escape(source.Source));
        }

        console.Write(sources);
    }

    private static string DescribeSubset(WhySubset subset)
    {
        var split = subset.Split.Count == 0 ? null : string.Join(", ", subset.Split.Select(s => $"{s.Subset} {s.Weight} ({s.Percent.ToString("0.##", CultureInfo.InvariantCulture)} %)"));
        return subset.Reason switch
        {
            "header" => $"{subset.Key}={subset.Name}, forced by header {subset.Header}: {subset.HeaderValue}" + (split is null ? string.Empty : $" (the split would draw: {split})"),
            "split" when subset.Name is not null => $"{subset.Key}={subset.Name}, weight {subset.Weight} of the split ({subset.Percent?.ToString("0.##", CultureInfo.InvariantCulture)} %): {split}",
            "split" => $"drawn per request by weight: {split}" + (subset.Header is null ? string.Empty : $"; send {subset.Header}: <subset> to force one"),
            _ => "none: the route has no split, so every endpoint is a candidate" + (subset.Header is null ? string.Empty : $" (send {subset.Header}: <subset> to force one)"),
        };
    }
}
