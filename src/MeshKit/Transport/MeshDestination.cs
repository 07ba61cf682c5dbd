using System.Collections.Concurrent;
using MeshKit.Identity;

namespace MeshKit.Transport;

/// <summary>
/// A logical mesh destination, named by the host of a mesh call: <c>https://orders/...</c> is service <c>orders</c> in the
/// caller's namespace, <c>https://orders.payments/...</c> is service <c>orders</c> in namespace <c>payments</c>. The SPIFFE ID
/// the server must present comes from this name and nothing else.
/// </summary>
public sealed class MeshDestination
{
    private MeshDestination(string host, SpiffeId expectedIdentity)
    {
        Host = host;
        ExpectedIdentity = expectedIdentity;
        SpanName = $"mesh {host}";
    }

    /// <summary>Gets the host as written in the request (the discovery name, the TLS SNI and the Host header).</summary>
    public string Host { get; }

    /// <summary>Gets the service name.</summary>
    public string Service => ExpectedIdentity.Service;

    /// <summary>Gets the namespace.</summary>
    public string Namespace => ExpectedIdentity.Namespace;

    /// <summary>Gets the SPIFFE ID the destination's servers must present.</summary>
    public SpiffeId ExpectedIdentity { get; }

    /// <summary>Gets the name of the logical-call span, formatted once rather than on every call.</summary>
    internal string SpanName { get; }

    /// <inheritdoc/>
    public override string ToString() => Host;

    /// <summary>Parses and caches destinations by host, so the request path does not allocate after the first call.</summary>
    internal sealed class Cache(string trustDomain, string callerNamespace)
    {
        private readonly ConcurrentDictionary<string, MeshDestination?> _byHost = new(StringComparer.Ordinal);

        /// <summary>Gets the destination for a request URI, or <see langword="null"/> when the URI is not a mesh call.</summary>
        public MeshDestination? Get(Uri? uri)
        {
            if (uri is null || !uri.IsAbsoluteUri || uri.Scheme != Uri.UriSchemeHttps || uri.HostNameType != UriHostNameType.Dns)
            {
                return null;
            }

            var host = uri.IdnHost;
            if (_byHost.TryGetValue(host, out var cached))
            {
                return cached;
            }

            var parsed = Parse(host);

            // Bounded: a client that calls many non-mesh hosts must not grow this without limit.
            if (_byHost.Count < 10_000)
            {
                _byHost.TryAdd(host, parsed);
            }

            return parsed;
        }

        private MeshDestination? Parse(string host)
        {
            var dot = host.IndexOf('.', StringComparison.Ordinal);
            var service = dot < 0 ? host : host[..dot];
            var ns = dot < 0 ? callerNamespace : host[(dot + 1)..];
            if (!SpiffeId.IsValidName(service, out _) || !SpiffeId.IsValidName(ns, out _) || ns == SpiffeId.ReservedNamespace)
            {
                return null;
            }

            return new MeshDestination(host, SpiffeId.Create(trustDomain, ns, service));
        }
    }
}
