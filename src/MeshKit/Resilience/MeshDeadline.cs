using System.Diagnostics;
using System.Globalization;

namespace MeshKit.Resilience;

/// <summary>
/// Deadline propagation. A mesh call sends the time it has left in <see cref="HeaderName"/> (milliseconds, like
/// <c>grpc-timeout</c>; a duration rather than a clock time, so hosts need not agree on the time). A MeshKit server
/// reads it and caps the total timeout of every mesh call it makes while handling that request, so deadlines shrink
/// along a call chain.
/// </summary>
public static class MeshDeadline
{
    /// <summary>The header that carries the remaining time in milliseconds.</summary>
    public const string HeaderName = "x-mesh-timeout-ms";

    private static readonly AsyncLocal<long> Deadline = new();

    /// <summary>Gets the time left before the incoming request's deadline, or <see langword="null"/> when it has none.</summary>
    public static TimeSpan? Remaining
    {
        get
        {
            var deadline = Deadline.Value;
            if (deadline == 0)
            {
                return null;
            }

            var left = deadline - Stopwatch.GetTimestamp();
            return left <= 0 ? TimeSpan.Zero : TimeSpan.FromSeconds((double)left / Stopwatch.Frequency);
        }
    }

    /// <summary>Sets the deadline of the current flow from an incoming header value; ignores values that do not parse.</summary>
    /// <param name="headerValue">The header's value.</param>
    internal static void SetFromHeader(string? headerValue)
    {
        if (headerValue is not null
            && long.TryParse(headerValue, NumberStyles.None, CultureInfo.InvariantCulture, out var milliseconds)
            && milliseconds is > 0 and < 86_400_000)
        {
            Deadline.Value = Stopwatch.GetTimestamp() + (milliseconds * Stopwatch.Frequency / 1000);
        }
    }

    /// <summary>Formats the time left until <paramref name="deadlineTimestamp"/> for the header.</summary>
    internal static string Format(long deadlineTimestamp)
    {
        var left = (deadlineTimestamp - Stopwatch.GetTimestamp()) * 1000 / Stopwatch.Frequency;
        return Math.Max(1, left).ToString(CultureInfo.InvariantCulture);
    }
}
