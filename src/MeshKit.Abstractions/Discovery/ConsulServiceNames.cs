using System.Diagnostics.CodeAnalysis;
using MeshKit.Identity;

namespace MeshKit.Discovery;

/// <summary>
/// How mesh names map to Consul service names. A service in the <c>default</c> namespace is registered under its plain
/// name (<c>orders</c>); a service in another namespace under <c>&lt;service&gt;.&lt;namespace&gt;</c>
/// (<c>orders.payments</c>), the same text a caller outside that namespace writes as the host of a mesh call. A
/// destination is read the way <c>MeshDestination</c> reads it: <c>https://orders</c> is <c>orders</c> in the caller's
/// own namespace, so a caller in <c>payments</c> asking for <c>orders</c> watches <c>orders.payments</c>.
/// Service names and namespaces are DNS labels, so a dot is never ambiguous.
/// </summary>
public static class ConsulServiceNames
{
    /// <summary>Gets the Consul service name of a service in a namespace.</summary>
    /// <param name="service">The service name.</param>
    /// <param name="namespace">Its namespace.</param>
    /// <returns>The Consul service name.</returns>
    public static string ForService(string service, string @namespace) =>
        @namespace == SpiffeId.DefaultNamespace ? service : service + "." + @namespace;

    /// <summary>
    /// Gets the Consul service name for a destination host as written in a call (<c>orders</c>, <c>orders.payments</c>),
    /// from a caller in <paramref name="callerNamespace"/>. Hosts that cannot be mesh destinations (three labels, bad
    /// characters, the reserved namespace) have none. This is the name mapping only: whether a workload treats a host as a
    /// mesh name at all also depends on its settings (<c>Mesh:Client:Namespaces</c>, static entries), and MeshKit's Consul
    /// provider checks that first.
    /// </summary>
    /// <param name="host">The destination host.</param>
    /// <param name="callerNamespace">The caller's namespace.</param>
    /// <param name="consulName">The Consul service name.</param>
    /// <returns>Whether the host is a mesh destination.</returns>
    public static bool TryForDestination(string host, string callerNamespace, [NotNullWhen(true)] out string? consulName)
    {
        consulName = null;
        if (string.IsNullOrEmpty(host))
        {
            return false;
        }

        var dot = host.IndexOf('.', StringComparison.Ordinal);
        var service = dot < 0 ? host : host[..dot];
        var ns = dot < 0 ? callerNamespace : host[(dot + 1)..];
        if (!SpiffeId.IsValidName(service, out _) || !SpiffeId.IsValidName(ns, out _) || ns == SpiffeId.ReservedNamespace)
        {
            return false;
        }

        consulName = ForService(service, ns);
        return true;
    }
}
