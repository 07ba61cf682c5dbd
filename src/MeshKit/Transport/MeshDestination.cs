using System.Collections.Concurrent;
using MeshKit.Discovery;
using MeshKit.Identity;
using Microsoft.Extensions.Primitives;

namespace MeshKit.Transport;

/// <summary>
/// A logical mesh destination, named by the host of a mesh call: <c>https://orders/...</c> is service <c>orders</c> in the
/// caller's namespace, <c>https://orders.payments/...</c> is service <c>orders</c> in namespace <c>payments</c> (a namespace
/// the workload calls: see <c>Mesh:Client:Namespaces</c>). The SPIFFE ID the server must present comes from this name and
/// nothing else.
/// </summary>
internal sealed class MeshDestination
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

    /// <summary>
    /// Decides which request URIs are mesh calls, and caches the destination (or "not a mesh call") per host, so the request
    /// path does not allocate after the first call. A mesh call is an absolute <c>https</c> (or <c>wss</c>) URI without a port other than
    /// 443 whose host is a mesh name (<see cref="MeshDestinationNames"/>); anything else is not, and never enters mesh
    /// discovery.
    /// </summary>
    internal sealed class Cache : IDisposable
    {
        /// <summary>Bounded: a client that calls many non-mesh hosts must not grow the cache without limit.</summary>
        private const int MaxHosts = 10_000;

        private readonly ConcurrentDictionary<string, MeshDestination?> _byHost = new(StringComparer.Ordinal);
        private readonly string _trustDomain;
        private readonly MeshDestinationNames _names;
        private readonly IDisposable _reloads;
        private int _count;

        public Cache(string trustDomain, MeshDestinationNames names)
        {
            _trustDomain = trustDomain;
            _names = names;

            // A reloaded Mesh:Discovery:Static section can make a host a mesh name, or stop doing so.
            _reloads = ChangeToken.OnChange(names.GetChangeToken, Clear);
        }

        /// <summary>Gets the destination for a request URI, or <see langword="null"/> when the URI is not a mesh call.</summary>
        public MeshDestination? Get(Uri? uri)
        {
            if (uri is null || !uri.IsAbsoluteUri || !IsMeshScheme(uri.Scheme) || uri.HostNameType != UriHostNameType.Dns || !uri.IsDefaultPort)
            {
                return null;
            }

            var host = uri.IdnHost;
            if (_byHost.TryGetValue(host, out var cached))
            {
                return cached;
            }

            var parsed = _names.TryParse(host, out var service, out var ns)
                ? new MeshDestination(host, SpiffeId.Create(_trustDomain, ns, service))
                : null;
            if (Volatile.Read(ref _count) < MaxHosts && _byHost.TryAdd(host, parsed))
            {
                Interlocked.Increment(ref _count);
            }

            return parsed;
        }

        /// <summary>Says why a request URI is not a mesh call, for errors; <see langword="null"/> when it is one.</summary>
        public string? Explain(Uri? uri)
        {
            if (uri is null || !uri.IsAbsoluteUri)
            {
                return "the request has no absolute URI";
            }

            if (!IsMeshScheme(uri.Scheme))
            {
                return $"mesh calls are https (wss:// for a WebSocket), and this is {uri.Scheme}";
            }

            if (uri.HostNameType is UriHostNameType.IPv4 or UriHostNameType.IPv6)
            {
                return "an IP address is never a mesh name";
            }

            if (uri.HostNameType != UriHostNameType.Dns)
            {
                return $"'{uri.Host}' is not a DNS host name";
            }

            if (!uri.IsDefaultPort)
            {
                return $"it names port {uri.Port}; a mesh call takes its endpoints' ports from discovery, so its URI has none (or 443)";
            }

            return _names.Explain(uri.IdnHost);
        }

        public void Dispose() => _reloads.Dispose();

        /// <summary>
        /// https, or wss: ClientWebSocket sends its upgrade with the URI as written (<c>wss://chat/...</c>), and a WebSocket is
        /// a mesh call like any other. Plain <c>http</c> and <c>ws</c> never are: mesh calls are mTLS.
        /// </summary>
        private static bool IsMeshScheme(string scheme) =>
            scheme == Uri.UriSchemeHttps || scheme == Uri.UriSchemeWss;

        private void Clear()
        {
            _byHost.Clear();
            Volatile.Write(ref _count, 0);
        }
    }
}
