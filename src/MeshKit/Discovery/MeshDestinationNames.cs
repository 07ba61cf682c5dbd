using System.Collections.Frozen;
using System.Diagnostics.CodeAnalysis;
using MeshKit.Hosting;
using MeshKit.Identity;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace MeshKit.Discovery;

/// <summary>
/// Which hosts are mesh names, the one rule that the client call path, the endpoint registry and MeshKit's endpoint
/// providers share, so that a host that is not a mesh name never enters mesh discovery:
/// <list type="bullet">
/// <item><c>&lt;service&gt;</c>: one DNS label that is a valid service name, except <c>localhost</c> (RFC 6761), is a service
/// in the caller's own namespace;</item>
/// <item><c>&lt;service&gt;.&lt;namespace&gt;</c>: exactly two labels, only when the namespace is the caller's own, or is
/// listed in <c>Mesh:Client:Namespaces</c>, or the static discovery section has an entry for that exact host
/// (<c>Mesh:Discovery:Static:orders.payments</c>). Never <c>mesh-system</c>, <c>localhost</c> or <c>local</c>;</item>
/// <item>nothing else: three or more labels, a trailing dot, IP literals, names with characters outside a DNS label.</item>
/// </list>
/// Consul is not asked: whoever can register a service in Consul could otherwise turn <c>example.com</c> into a mesh name.
/// The rule on the request URI itself (https or wss, no explicit port other than 443) lives with the client call path.
/// </summary>
internal sealed class MeshDestinationNames
{
    /// <summary>The setting that lists the namespaces, besides the workload's own, that mesh clients call.</summary>
    public const string NamespacesKey = MeshOptions.SectionName + ":Client:Namespaces";

    private readonly FrozenSet<string> _namespaces;
    private readonly IConfiguration? _configuration;

    /// <summary>Initializes the rule from the workload's settings.</summary>
    /// <param name="options">The mesh settings: the caller's namespace and <c>Mesh:Client:Namespaces</c>.</param>
    /// <param name="configuration">The configuration, whose <c>Mesh:Discovery:Static</c> section names known destinations.</param>
    public MeshDestinationNames(IOptions<MeshOptions> options, IConfiguration configuration)
        : this(options.Value.Service.Namespace, options.Value.Client.Namespaces, configuration)
    {
    }

    /// <summary>Initializes the rule.</summary>
    /// <param name="callerNamespace">The namespace of this workload.</param>
    /// <param name="declaredNamespaces">Further namespaces that mesh clients call.</param>
    /// <param name="configuration">The configuration whose static discovery section names known destinations, if any.</param>
    public MeshDestinationNames(string callerNamespace, IEnumerable<string> declaredNamespaces, IConfiguration? configuration)
    {
        CallerNamespace = callerNamespace;
        _namespaces = declaredNamespaces.Append(callerNamespace).ToFrozenSet(StringComparer.Ordinal);
        _configuration = configuration;
    }

    /// <summary>Why a host is or is not a mesh name.</summary>
    private enum Verdict
    {
        Mesh,
        Empty,
        Localhost,
        InvalidService,
        TooManyLabels,
        InvalidNamespace,
        ReservedNamespace,
        SpecialUseNamespace,
        UnknownNamespace,
    }

    /// <summary>Gets the namespace of this workload: what <c>https://&lt;service&gt;</c> means.</summary>
    public string CallerNamespace { get; }

    /// <summary>Reads a host (lowercase, as <see cref="Uri.IdnHost"/> gives it) as a mesh name.</summary>
    /// <param name="host">The host.</param>
    /// <param name="service">The service, when the host is a mesh name.</param>
    /// <param name="namespace">The namespace, when the host is a mesh name.</param>
    /// <returns>Whether the host is a mesh name.</returns>
    public bool TryParse(string host, [NotNullWhen(true)] out string? service, [NotNullWhen(true)] out string? @namespace) =>
        Judge(host, out service, out @namespace) == Verdict.Mesh;

    /// <summary>Says why a host is not a mesh name, for errors; <see langword="null"/> when it is one.</summary>
    /// <param name="host">The host.</param>
    /// <returns>The reason, or <see langword="null"/>.</returns>
    public string? Explain(string host)
    {
        var verdict = Judge(host, out _, out _);
        var dot = host.IndexOf('.', StringComparison.Ordinal);
        var servicePart = dot < 0 ? host : host[..dot];
        var namespacePart = dot < 0 ? string.Empty : host[(dot + 1)..];
        return verdict switch
        {
            Verdict.Mesh => null,
            Verdict.Empty => "it is empty",
            Verdict.Localhost => "'localhost' always means this machine (RFC 6761), never a mesh service",
            Verdict.InvalidService => $"its service part '{servicePart}' {Why(servicePart)}",
            Verdict.TooManyLabels => "it has more than two labels; a mesh name is <service> or <service>.<namespace>",
            Verdict.InvalidNamespace => $"its namespace part '{namespacePart}' {Why(namespacePart)}",
            Verdict.ReservedNamespace => $"namespace '{SpiffeId.ReservedNamespace}' is reserved for the control service",
            Verdict.SpecialUseNamespace => $"names under '.{namespacePart}' are special-use DNS names (RFC 6761, RFC 6762), never mesh names",
            Verdict.UnknownNamespace => $"namespace '{namespacePart}' is neither this workload's namespace ('{CallerNamespace}') nor listed in "
                + $"{NamespacesKey}, and {StaticEndpointProviderFactory.SectionPath} has no entry '{host}'",
            _ => verdict.ToString(),
        };

        static string Why(string name) => SpiffeId.IsValidName(name, out var why) ? "is not a DNS label" : why;
    }

    /// <summary>
    /// Gets a token that fires when the configuration reloads: a static discovery entry may have made a host a mesh name
    /// (or stopped doing so), so decisions cached per host are dropped.
    /// </summary>
    /// <returns>The change token.</returns>
    public IChangeToken GetChangeToken() => _configuration?.GetReloadToken() ?? new CancellationChangeToken(CancellationToken.None);

    private Verdict Judge(string host, out string? service, out string? @namespace)
    {
        service = null;
        @namespace = null;
        if (string.IsNullOrEmpty(host))
        {
            return Verdict.Empty;
        }

        var dot = host.IndexOf('.', StringComparison.Ordinal);
        if (dot < 0)
        {
            if (host == "localhost")
            {
                return Verdict.Localhost;
            }

            if (!SpiffeId.IsValidName(host, out _))
            {
                return Verdict.InvalidService;
            }

            service = host;
            @namespace = CallerNamespace;
            return Verdict.Mesh;
        }

        if (host.IndexOf('.', dot + 1) >= 0)
        {
            return Verdict.TooManyLabels;
        }

        var servicePart = host.AsSpan(0, dot);
        var namespacePart = host[(dot + 1)..];
        if (!SpiffeId.IsValidName(servicePart, out _))
        {
            return Verdict.InvalidService;
        }

        if (!SpiffeId.IsValidName(namespacePart, out _))
        {
            return Verdict.InvalidNamespace;
        }

        if (namespacePart == SpiffeId.ReservedNamespace)
        {
            return Verdict.ReservedNamespace;
        }

        if (MeshNames.IsSpecialUseNamespace(namespacePart))
        {
            return Verdict.SpecialUseNamespace;
        }

        if (!_namespaces.Contains(namespacePart) && !IsStaticDestination(host))
        {
            return Verdict.UnknownNamespace;
        }

        service = servicePart.ToString();
        @namespace = namespacePart;
        return Verdict.Mesh;
    }

    /// <summary>Whether the static discovery section has an entry for exactly this host (read live, so reloads count).</summary>
    private bool IsStaticDestination(string host) =>
        _configuration is not null && _configuration.GetSection(StaticEndpointProviderFactory.SectionPath).GetSection(host).Exists();
}
