using System.Globalization;
using System.Text;

namespace MeshKit.Policy;

/// <summary>
/// A set of gRPC status codes (0–16), compared by value: which statuses a destination retries
/// (<see cref="RetryPolicy.GrpcStatus"/>) or counts as failures of the endpoint (<see cref="OutlierPolicy.GrpcStatus"/>).
/// Names are gRPC's (<c>Unavailable</c>, <c>RESOURCE_EXHAUSTED</c>, <c>resource-exhausted</c>: case, <c>_</c> and <c>-</c> do
/// not matter) or the codes' numbers.
/// </summary>
public readonly record struct GrpcStatusSet
{
    /// <summary>gRPC's status names, indexed by code, as Grpc.Core's <c>StatusCode</c> spells them.</summary>
    public static readonly IReadOnlyList<string> Names =
    [
        "OK", "Cancelled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists", "PermissionDenied",
        "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented", "Internal", "Unavailable",
        "DataLoss", "Unauthenticated",
    ];

    /// <summary>The UNAVAILABLE status (14): the server cannot take the call now.</summary>
    public const int Unavailable = 14;

    private readonly int _bits;

    private GrpcStatusSet(int bits) => _bits = bits;

    /// <summary>Gets the empty set.</summary>
    public static GrpcStatusSet None => default;

    /// <summary>Gets the set holding UNAVAILABLE only.</summary>
    public static GrpcStatusSet UnavailableOnly { get; } = Of(Unavailable);

    /// <summary>Gets whether the set is empty.</summary>
    public bool IsEmpty => _bits == 0;

    /// <summary>Makes a set of codes.</summary>
    /// <param name="codes">Codes from 0 to 16.</param>
    /// <returns>The set.</returns>
    public static GrpcStatusSet Of(params ReadOnlySpan<int> codes)
    {
        var bits = 0;
        foreach (var code in codes)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(code);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(code, Names.Count - 1);
            bits |= 1 << code;
        }

        return new GrpcStatusSet(bits);
    }

    /// <summary>Gets whether <paramref name="code"/> is in the set.</summary>
    /// <param name="code">A gRPC status code.</param>
    /// <returns>Whether it is in the set.</returns>
    public bool Contains(int code) => code is >= 0 and < 17 && (_bits & (1 << code)) != 0;

    /// <summary>Reads one status name or number.</summary>
    /// <param name="value">A name (<c>Unavailable</c>, <c>UNAVAILABLE</c>, <c>unavailable</c>, <c>resource-exhausted</c>) or a number.</param>
    /// <param name="code">The code read.</param>
    /// <returns>Whether the value names a status.</returns>
    public static bool TryParseCode(string? value, out int code)
    {
        code = -1;
        if (string.IsNullOrWhiteSpace(value))
        {
            return false;
        }

        value = value.Trim();
        if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            code = number;
            return number < Names.Count;
        }

        var bare = value.Replace("_", string.Empty, StringComparison.Ordinal).Replace("-", string.Empty, StringComparison.Ordinal);
        for (var i = 0; i < Names.Count; i++)
        {
            if (string.Equals(Names[i], bare, StringComparison.OrdinalIgnoreCase))
            {
                code = i;
                return true;
            }
        }

        return false;
    }

    /// <summary>Gets the name of a code (<c>Unavailable</c>), or the number when it is not a gRPC status.</summary>
    /// <param name="code">A gRPC status code.</param>
    /// <returns>Its name.</returns>
    public static string NameOf(int code) => code >= 0 && code < Names.Count ? Names[code] : code.ToString(CultureInfo.InvariantCulture);

    /// <inheritdoc/>
    public override string ToString()
    {
        var text = new StringBuilder("[");
        for (var i = 0; i < Names.Count; i++)
        {
            if (Contains(i))
            {
                text.Append(text.Length > 1 ? ", " : string.Empty).Append(Names[i]);
            }
        }

        return text.Append(']').ToString();
    }
}
