using System.Diagnostics.CodeAnalysis;
using MeshKit.Identity;

namespace MeshKit.ControlPlane.Tokens;

/// <summary>One entry of a join token's <c>Services</c> list: a namespace and service, or a wildcard.</summary>
/// <param name="Namespace">The namespace, or <c>*</c> for every namespace.</param>
/// <param name="Service">The service, or <c>*</c> for every service.</param>
internal readonly record struct ServiceGrant(string Namespace, string Service)
{
    private const string Wildcard = "*";

    public bool Covers(string @namespace, string service)
    {
        // The reserved namespace is never granted, whatever the grant says.
        if (string.Equals(@namespace, SpiffeId.ReservedNamespace, StringComparison.Ordinal))
        {
            return false;
        }

        return (Namespace == Wildcard || string.Equals(Namespace, @namespace, StringComparison.Ordinal))
            && (Service == Wildcard || string.Equals(Service, service, StringComparison.Ordinal));
    }

    public override string ToString() => $"{Namespace}/{Service}";

    public static bool TryParse(string? text, bool allowWildcards, out ServiceGrant grant, [NotNullWhen(false)] out string? error)
    {
        grant = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "is empty; write '<namespace>/<service>' or '<service>'.";
            return false;
        }

        string ns, service;
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0)
        {
            (ns, service) = text == Wildcard ? (Wildcard, Wildcard) : (SpiffeId.DefaultNamespace, text);
        }
        else
        {
            ns = text[..slash];
            service = text[(slash + 1)..];
        }

        var wildcard = ns == Wildcard || service == Wildcard;
        if (wildcard && !allowWildcards)
        {
            error = "is a wildcard; wildcards are refused unless ControlPlane:AllowWildcardGrants is true.";
            return false;
        }

        if (ns == Wildcard && service != Wildcard)
        {
            error = "is not valid; a namespace wildcard covers every service ('*'), use '<namespace>/*' for one namespace.";
            return false;
        }

        if (ns != Wildcard && !SpiffeId.IsValidName(ns, out var why))
        {
            error = $"has a namespace that {why}.";
            return false;
        }

        if (service != Wildcard && !SpiffeId.IsValidName(service, out why))
        {
            error = $"has a service name that {why}.";
            return false;
        }

        if (string.Equals(ns, SpiffeId.ReservedNamespace, StringComparison.Ordinal))
        {
            error = $"names the reserved namespace '{SpiffeId.ReservedNamespace}', which is never granted.";
            return false;
        }

        grant = new ServiceGrant(ns, service);
        error = null;
        return true;
    }
}
