using System.Globalization;

namespace MeshKit.Deadlines;

/// <summary>
/// gRPC's <c>grpc-timeout</c> header: a positive integer of at most 8 digits and a unit (<c>H</c>, <c>M</c>, <c>S</c>,
/// <c>m</c>, <c>u</c>, <c>n</c>), as gRPC over HTTP/2 defines it.
/// </summary>
internal static class GrpcTimeout
{
    /// <summary>The header's name.</summary>
    public const string HeaderName = "grpc-timeout";

    /// <summary>Reads a header value; <see langword="null"/> when it does not parse.</summary>
    public static TimeSpan? Parse(string? value)
    {
        if (value is null || value.Length is < 2 or > 9
            || !long.TryParse(value.AsSpan(0, value.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var amount))
        {
            return null;
        }

        return value[^1] switch
        {
            'H' => TimeSpan.FromHours(amount),
            'M' => TimeSpan.FromMinutes(amount),
            'S' => TimeSpan.FromSeconds(amount),
            'm' => TimeSpan.FromMilliseconds(amount),
            'u' => TimeSpan.FromMicroseconds(amount),
            'n' => TimeSpan.FromTicks(amount / 100),
            _ => null,
        };
    }

    /// <summary>Formats a timeout in whole milliseconds (at least 1), in seconds when milliseconds would need more than 8 digits.</summary>
    public static string Format(TimeSpan timeout)
    {
        var milliseconds = Math.Max(1L, (long)Math.Ceiling(timeout.TotalMilliseconds));
        return milliseconds <= 99_999_999
            ? string.Create(CultureInfo.InvariantCulture, $"{milliseconds}m")
            : string.Create(CultureInfo.InvariantCulture, $"{Math.Min(99_999_999L, milliseconds / 1000)}S");
    }
}
