using System.Diagnostics.CodeAnalysis;

namespace MeshKit.Identity;

/// <summary>
/// A SPIFFE ID of a MeshKit workload: <c>spiffe://&lt;trust-domain&gt;/ns/&lt;namespace&gt;/svc/&lt;service&gt;</c>.
/// </summary>
/// <remarks>
/// Parsing is strict and never goes through <see cref="Uri"/>, which normalises <c>..</c> segments and
/// percent-escapes: <c>spiffe://td/ns/evil/../svc/orders</c> is rejected, not read as <c>/ns/svc/orders</c>.
/// The trust domain and path follow the SPIFFE ID specification (lowercase trust domain of
/// <c>[a-z0-9.-_]</c>, path segments of <c>[A-Za-z0-9.-_]</c>, no empty, <c>.</c> or <c>..</c> segments, no query,
/// fragment, port, user info or percent-encoding). MeshKit further requires the path
/// <c>/ns/&lt;namespace&gt;/svc/&lt;service&gt;</c>, where both names are DNS labels (see <see cref="IsValidName"/>),
/// because the service name doubles as the TLS host of mesh calls.
/// </remarks>
public sealed class SpiffeId : IEquatable<SpiffeId>
{
    /// <summary>The URI scheme prefix of every SPIFFE ID.</summary>
    public const string Prefix = "spiffe://";

    /// <summary>The namespace reserved for MeshKit's own control service; never granted to workloads.</summary>
    public const string ReservedNamespace = "mesh-system";

    /// <summary>The namespace used when none is given.</summary>
    public const string DefaultNamespace = "default";

    /// <summary>The SPIFFE ID specification's limit on the length of a whole ID.</summary>
    public const int MaxLength = 2048;

    /// <summary>The SPIFFE ID specification's limit on the length of a trust domain.</summary>
    public const int MaxTrustDomainLength = 255;

    /// <summary>The longest namespace or service name (a DNS label).</summary>
    public const int MaxNameLength = 63;

    private SpiffeId(string trustDomain, string @namespace, string service, string value)
    {
        TrustDomain = trustDomain;
        Namespace = @namespace;
        Service = service;
        Value = value;
    }

    /// <summary>Gets the trust domain, for example <c>mesh.local</c>.</summary>
    public string TrustDomain { get; }

    /// <summary>Gets the workload's namespace, for example <c>default</c>.</summary>
    public string Namespace { get; }

    /// <summary>Gets the workload's service name, for example <c>orders</c>.</summary>
    public string Service { get; }

    /// <summary>Gets the whole ID, for example <c>spiffe://mesh.local/ns/default/svc/orders</c>.</summary>
    public string Value { get; }

    /// <summary>Creates the SPIFFE ID of a service.</summary>
    /// <param name="trustDomain">The trust domain.</param>
    /// <param name="namespace">The namespace.</param>
    /// <param name="service">The service name.</param>
    /// <returns>The SPIFFE ID.</returns>
    /// <exception cref="ArgumentException">A part is not valid; the message says which and why.</exception>
    public static SpiffeId Create(string trustDomain, string @namespace, string service)
    {
        ArgumentNullException.ThrowIfNull(trustDomain);
        ArgumentNullException.ThrowIfNull(@namespace);
        ArgumentNullException.ThrowIfNull(service);
        if (!IsValidTrustDomain(trustDomain, out var why))
        {
            throw new ArgumentException($"Trust domain '{trustDomain}' is not valid: {why}", nameof(trustDomain));
        }

        if (!IsValidName(@namespace, out why))
        {
            throw new ArgumentException($"Namespace '{@namespace}' is not valid: {why}", nameof(@namespace));
        }

        if (!IsValidName(service, out why))
        {
            throw new ArgumentException($"Service name '{service}' is not valid: {why}", nameof(service));
        }

        return new SpiffeId(trustDomain, @namespace, service, $"{Prefix}{trustDomain}/ns/{@namespace}/svc/{service}");
    }

    /// <summary>Parses a SPIFFE ID strictly.</summary>
    /// <param name="value">The text.</param>
    /// <returns>The SPIFFE ID.</returns>
    /// <exception cref="FormatException">The text is not a valid MeshKit SPIFFE ID; the message says why.</exception>
    public static SpiffeId Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return TryParse(value, out var id, out var error)
            ? id
            : throw new FormatException($"'{Printable(value)}' is not a valid SPIFFE ID: {error}");
    }

    /// <summary>Tries to parse a SPIFFE ID strictly.</summary>
    /// <param name="value">The text.</param>
    /// <param name="id">The SPIFFE ID, when valid.</param>
    /// <returns><see langword="true"/> when <paramref name="value"/> is a valid MeshKit SPIFFE ID.</returns>
    public static bool TryParse([NotNullWhen(true)] string? value, [NotNullWhen(true)] out SpiffeId? id)
        => TryParse(value, out id, out _);

    /// <summary>Tries to parse a SPIFFE ID strictly, saying why it is not valid.</summary>
    /// <param name="value">The text.</param>
    /// <param name="id">The SPIFFE ID, when valid.</param>
    /// <param name="error">Why the text is not valid, when it is not.</param>
    /// <returns><see langword="true"/> when <paramref name="value"/> is a valid MeshKit SPIFFE ID.</returns>
    public static bool TryParse(
        [NotNullWhen(true)] string? value,
        [NotNullWhen(true)] out SpiffeId? id,
        [NotNullWhen(false)] out string? error)
    {
        id = null;
        if (string.IsNullOrEmpty(value))
        {
            error = "it is empty";
            return false;
        }

        if (value.Length > MaxLength)
        {
            error = $"it is longer than {MaxLength} characters";
            return false;
        }

        // The scheme is matched exactly: SPIFFE IDs are lowercase and case variants are not the same ID.
        if (!value.StartsWith(Prefix, StringComparison.Ordinal))
        {
            error = "it must start with 'spiffe://'";
            return false;
        }

        var rest = value.AsSpan(Prefix.Length);
        var slash = rest.IndexOf('/');
        var trustDomain = slash < 0 ? rest : rest[..slash];
        if (!IsValidTrustDomain(trustDomain, out error))
        {
            error = "trust domain " + error;
            return false;
        }

        if (slash < 0)
        {
            error = "it names a trust domain but no workload (expected /ns/<namespace>/svc/<service>)";
            return false;
        }

        var path = rest[slash..];
        if (!IsValidPath(path, out error))
        {
            return false;
        }

        // The path is now known to be clean segments; MeshKit expects exactly /ns/<ns>/svc/<svc>.
        Span<Range> segments = stackalloc Range[5];
        var count = path[1..].Split(segments, '/');
        var segmentPath = path[1..];
        if (count != 4 || !segmentPath[segments[0]].SequenceEqual("ns") || !segmentPath[segments[2]].SequenceEqual("svc"))
        {
            error = "the path must be /ns/<namespace>/svc/<service>";
            return false;
        }

        var ns = segmentPath[segments[1]];
        var service = segmentPath[segments[3]];
        if (!IsValidName(ns, out error))
        {
            error = "namespace " + error;
            return false;
        }

        if (!IsValidName(service, out error))
        {
            error = "service name " + error;
            return false;
        }

        id = new SpiffeId(trustDomain.ToString(), ns.ToString(), service.ToString(), value);
        return true;
    }

    /// <summary>Checks a trust domain against the SPIFFE specification.</summary>
    /// <param name="trustDomain">The trust domain.</param>
    /// <param name="error">Why it is not valid, when it is not.</param>
    /// <returns><see langword="true"/> when valid.</returns>
    public static bool IsValidTrustDomain(ReadOnlySpan<char> trustDomain, [NotNullWhen(false)] out string? error)
    {
        if (trustDomain.IsEmpty)
        {
            error = "is empty";
            return false;
        }

        if (trustDomain.Length > MaxTrustDomainLength)
        {
            error = $"is longer than {MaxTrustDomainLength} characters";
            return false;
        }

        foreach (var c in trustDomain)
        {
            if (!(c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '.' or '-' or '_'))
            {
                error = $"contains '{Printable(c)}'; only lowercase letters, digits, '.', '-' and '_' are allowed (no port, user info or percent-escapes)";
                return false;
            }
        }

        error = null;
        return true;
    }

    /// <summary>
    /// Checks a namespace or service name: a DNS label of lowercase letters, digits and '-', at most 63
    /// characters, starting and ending with a letter or digit.
    /// </summary>
    /// <param name="name">The name.</param>
    /// <param name="error">Why it is not valid, when it is not.</param>
    /// <returns><see langword="true"/> when valid.</returns>
    public static bool IsValidName(ReadOnlySpan<char> name, [NotNullWhen(false)] out string? error)
    {
        if (name.IsEmpty)
        {
            error = "is empty";
            return false;
        }

        if (name.Length > MaxNameLength)
        {
            error = $"is longer than {MaxNameLength} characters";
            return false;
        }

        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            var alphanumeric = c is (>= 'a' and <= 'z') or (>= '0' and <= '9');
            if (!alphanumeric && !(c == '-' && i > 0 && i < name.Length - 1))
            {
                error = $"contains '{Printable(c)}' at position {i}; use lowercase letters, digits and inner '-' (a DNS label)";
                return false;
            }
        }

        error = null;
        return true;
    }

    private static bool IsValidPath(ReadOnlySpan<char> path, [NotNullWhen(false)] out string? error)
    {
        // path starts with '/'; every segment must be non-empty, not '.' or '..', of [A-Za-z0-9.-_].
        var start = 1;
        for (var i = 1; i <= path.Length; i++)
        {
            if (i < path.Length && path[i] != '/')
            {
                var c = path[i];
                if (!(c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '.' or '-' or '_'))
                {
                    error = c switch
                    {
                        '%' => "percent-escapes are not allowed",
                        '?' or '#' => "a query or fragment is not allowed",
                        _ => $"the path contains '{Printable(c)}'; only letters, digits, '.', '-' and '_' are allowed",
                    };
                    return false;
                }

                continue;
            }

            var segment = path[start..i];
            if (segment.IsEmpty)
            {
                error = i == path.Length ? "a trailing '/' is not allowed" : "empty path segments ('//') are not allowed";
                return false;
            }

            if (segment is "." or "..")
            {
                error = "'.' and '..' path segments are not allowed";
                return false;
            }

            start = i + 1;
        }

        error = null;
        return true;
    }

    private static string Printable(char c) => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString();

    private static string Printable(string value)
    {
        // Keep error messages short and single-line even for hostile input.
        var shown = value.Length > 256 ? value[..256] + "..." : value;
        return shown.ReplaceLineEndings(" ");
    }

    /// <inheritdoc/>
    public bool Equals(SpiffeId? other) => other is not null && string.Equals(Value, other.Value, StringComparison.Ordinal);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is SpiffeId other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(Value);

    /// <inheritdoc/>
    public override string ToString() => Value;

    /// <summary>Compares two SPIFFE IDs by value.</summary>
    /// <param name="left">The first ID.</param>
    /// <param name="right">The second ID.</param>
    /// <returns><see langword="true"/> when equal.</returns>
    public static bool operator ==(SpiffeId? left, SpiffeId? right) => left is null ? right is null : left.Equals(right);

    /// <summary>Compares two SPIFFE IDs by value.</summary>
    /// <param name="left">The first ID.</param>
    /// <param name="right">The second ID.</param>
    /// <returns><see langword="true"/> when not equal.</returns>
    public static bool operator !=(SpiffeId? left, SpiffeId? right) => !(left == right);
}
