using System.Diagnostics.CodeAnalysis;
using MeshKit.Identity;

namespace MeshKit;

/// <summary>
/// The mesh's naming rules, each defined once and shared by the data plane's settings, the policy reader, the control
/// service, <c>meshctl</c> and the Aspire integration. Every rule answers with a reason that fits after the value in an
/// error message: <c>$"{key} '{value}' {reason}."</c>, for example
/// <c>Mesh:Service:Version 'v2+build' contains '+' at position 2; use ...</c>.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>Service names and namespaces are DNS labels (<see cref="SpiffeId.IsValidName"/>): the service name is also
/// the TLS host of mesh calls.</item>
/// <item>Trust domains follow the SPIFFE specification (<see cref="SpiffeId.IsValidTrustDomain"/>).</item>
/// <item>Versions and subset names are one rule: a subset is named by the metadata value it selects (the version,
/// by default), so a version that a subset could not name, or a subset name no version could carry, is a mistake.
/// The rule is a Kubernetes label value (1 to 63 letters, digits, '.', '-' and '_', starting and ending with a letter
/// or digit), so versions taken from a deployment's labels fit as they are.</item>
/// </list>
/// </remarks>
public static class MeshNames
{
    /// <summary>The namespace used when none is given.</summary>
    public const string DefaultNamespace = SpiffeId.DefaultNamespace;

    /// <summary>The namespace reserved for the control service; never granted to workloads.</summary>
    public const string ReservedNamespace = SpiffeId.ReservedNamespace;

    /// <summary>The longest service name or namespace (a DNS label).</summary>
    public const int MaxNameLength = SpiffeId.MaxNameLength;

    /// <summary>The longest version or subset name.</summary>
    public const int MaxVersionLength = 63;

    /// <summary>Checks a service name: a DNS label (lowercase letters, digits and inner '-', at most 63 characters).</summary>
    /// <param name="name">The service name.</param>
    /// <param name="reason">Why it is not valid, when it is not.</param>
    /// <returns><see langword="true"/> when valid.</returns>
    public static bool IsValidServiceName(ReadOnlySpan<char> name, [NotNullWhen(false)] out string? reason) =>
        SpiffeId.IsValidName(name, out reason);

    /// <summary>
    /// Checks a namespace: a DNS label, like a service name. Whether it is <see cref="ReservedNamespace"/> is a separate
    /// question (<see cref="IsReservedNamespace"/>): the control service's own SPIFFE ID uses it.
    /// </summary>
    /// <param name="name">The namespace.</param>
    /// <param name="reason">Why it is not valid, when it is not.</param>
    /// <returns><see langword="true"/> when valid.</returns>
    public static bool IsValidNamespace(ReadOnlySpan<char> name, [NotNullWhen(false)] out string? reason) =>
        SpiffeId.IsValidName(name, out reason);

    /// <summary>
    /// Gets whether a namespace can never be a mesh namespace because DNS gives its names another meaning:
    /// <c>localhost</c> (loopback, RFC 6761) and <c>local</c> (multicast DNS, RFC 6762).
    /// </summary>
    /// <param name="name">The namespace.</param>
    /// <returns><see langword="true"/> for a special-use name.</returns>
    public static bool IsSpecialUseNamespace(string name) => name is "localhost" or "local";

    /// <summary>Gets whether a namespace is the one reserved for the control service.</summary>
    /// <param name="name">The namespace.</param>
    /// <returns><see langword="true"/> for <see cref="ReservedNamespace"/>.</returns>
    public static bool IsReservedNamespace(ReadOnlySpan<char> name) => name.SequenceEqual(ReservedNamespace);

    /// <summary>Checks a trust domain against the SPIFFE specification (lowercase letters, digits, '.', '-' and '_').</summary>
    /// <param name="trustDomain">The trust domain.</param>
    /// <param name="reason">Why it is not valid, when it is not.</param>
    /// <returns><see langword="true"/> when valid.</returns>
    public static bool IsValidTrustDomain(ReadOnlySpan<char> trustDomain, [NotNullWhen(false)] out string? reason) =>
        SpiffeId.IsValidTrustDomain(trustDomain, out reason);

    /// <summary>
    /// Checks a service key: <c>&lt;service&gt;</c>, or <c>&lt;service&gt;.&lt;namespace&gt;</c> for a service in another
    /// namespace, as policy destinations and central policy documents are named.
    /// </summary>
    /// <param name="key">The service key.</param>
    /// <param name="reason">Why it is not valid, when it is not.</param>
    /// <returns><see langword="true"/> when valid.</returns>
    public static bool IsValidServiceKey(ReadOnlySpan<char> key, [NotNullWhen(false)] out string? reason)
    {
        var dot = key.IndexOf('.');
        if (dot < 0)
        {
            return IsValidServiceName(key, out reason);
        }

        if (!IsValidServiceName(key[..dot], out var why))
        {
            reason = $"has a service part that {why}";
            return false;
        }

        if (!IsValidNamespace(key[(dot + 1)..], out why))
        {
            reason = $"has a namespace part that {why}";
            return false;
        }

        reason = null;
        return true;
    }

    /// <summary>
    /// Checks a reference to a service in authorization rules: <c>&lt;service&gt;</c>, or
    /// <c>&lt;namespace&gt;/&lt;service&gt;</c>.
    /// </summary>
    /// <param name="reference">The reference.</param>
    /// <param name="reason">Why it is not valid, when it is not.</param>
    /// <returns><see langword="true"/> when valid.</returns>
    public static bool IsValidServiceReference(ReadOnlySpan<char> reference, [NotNullWhen(false)] out string? reason)
    {
        var slash = reference.IndexOf('/');
        if (slash < 0)
        {
            return IsValidServiceName(reference, out reason);
        }

        if (!IsValidNamespace(reference[..slash], out var why))
        {
            reason = $"has a namespace part that {why}";
            return false;
        }

        if (!IsValidServiceName(reference[(slash + 1)..], out why))
        {
            reason = $"has a service part that {why}";
            return false;
        }

        reason = null;
        return true;
    }

    /// <summary>
    /// Checks a version (<c>Mesh:Service:Version</c>, the <c>version</c> metadata of an endpoint). Versions and subset
    /// names are one rule: see <see cref="IsValidSubsetName"/>.
    /// </summary>
    /// <param name="version">The version.</param>
    /// <param name="reason">Why it is not valid, when it is not.</param>
    /// <returns><see langword="true"/> when valid.</returns>
    public static bool IsValidVersion(ReadOnlySpan<char> version, [NotNullWhen(false)] out string? reason) =>
        IsValidSubsetName(version, out reason);

    /// <summary>
    /// Checks a subset name (a key of a route's <c>Split</c>, a mirror's <c>Subset</c>): the metadata value that the
    /// subset selects, such as a version. 1 to 63 letters, digits, '.', '-' and '_', starting and ending with a letter or
    /// digit (a Kubernetes label value), for example <c>v2</c>, <c>1.4.0</c> or <c>canary_eu</c>.
    /// </summary>
    /// <param name="name">The subset name.</param>
    /// <param name="reason">Why it is not valid, when it is not.</param>
    /// <returns><see langword="true"/> when valid.</returns>
    public static bool IsValidSubsetName(ReadOnlySpan<char> name, [NotNullWhen(false)] out string? reason)
    {
        const string Rule = "use 1 to 63 letters, digits, '.', '-' and '_', starting and ending with a letter or digit (for example 'v2' or '1.4.0')";
        if (name.IsEmpty)
        {
            reason = "is empty; " + Rule;
            return false;
        }

        if (name.Length > MaxVersionLength)
        {
            reason = $"is longer than {MaxVersionLength} characters; " + Rule;
            return false;
        }

        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            var alphanumeric = char.IsAsciiLetterOrDigit(c);
            if (!alphanumeric && !(c is '.' or '-' or '_' && i > 0 && i < name.Length - 1))
            {
                reason = $"contains '{Printable(c)}' at position {i}; " + Rule;
                return false;
            }
        }

        reason = null;
        return true;
    }

    private static string Printable(char c) => char.IsControl(c) || char.IsWhiteSpace(c) ? $"\\u{(int)c:x4}" : c.ToString();
}
