using System.Globalization;

namespace MeshKit.Deadlines;

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

    // The deadline of the current flow with the clock it was set by (the mesh's TimeProvider), so it is read on that clock.
    private static readonly AsyncLocal<Deadline?> Current = new();

    /// <summary>Gets the time left before the incoming request's deadline, or <see langword="null"/> when it has none.</summary>
    public static TimeSpan? Remaining => Current.Value is { } deadline ? deadline.Remaining() : null;

    /// <summary>
    /// Sets the deadline of the current flow from an incoming header value, on <paramref name="time"/>'s clock; ignores
    /// values that do not parse.
    /// </summary>
    /// <param name="headerValue">The header's value.</param>
    /// <param name="time">The mesh's clock.</param>
    internal static void SetFromHeader(string? headerValue, TimeProvider time) => SetFromHeaders(headerValue, null, time);

    /// <summary>
    /// Sets the deadline of the current flow from MeshKit's header and gRPC's <c>grpc-timeout</c>, whichever is sooner; a
    /// value that does not parse is ignored.
    /// </summary>
    /// <param name="meshValue">The <see cref="HeaderName"/> value, if any.</param>
    /// <param name="grpcValue">The <c>grpc-timeout</c> value, if any.</param>
    /// <param name="time">The mesh's clock.</param>
    internal static void SetFromHeaders(string? meshValue, string? grpcValue, TimeProvider time)
    {
        long? milliseconds = null;
        if (meshValue is not null
            && long.TryParse(meshValue, NumberStyles.None, CultureInfo.InvariantCulture, out var mesh)
            && mesh is > 0 and < 86_400_000)
        {
            milliseconds = mesh;
        }

        if (GrpcTimeout.Parse(grpcValue) is { } grpc && grpc > TimeSpan.Zero)
        {
            var grpcMilliseconds = Math.Max(1L, (long)grpc.TotalMilliseconds);
            milliseconds = milliseconds is { } m ? Math.Min(m, grpcMilliseconds) : Math.Min(grpcMilliseconds, 86_400_000 - 1);
        }

        if (milliseconds is { } left)
        {
            Current.Value = new Deadline(time.GetTimestamp() + (left * time.TimestampFrequency / 1000), time);
        }
    }

    /// <summary>Formats the time left until <paramref name="deadlineTimestamp"/> (a timestamp of <paramref name="time"/>) for the header.</summary>
    internal static string Format(long deadlineTimestamp, TimeProvider time)
    {
        var left = (deadlineTimestamp - time.GetTimestamp()) * 1000 / time.TimestampFrequency;
        return Math.Max(1, left).ToString(CultureInfo.InvariantCulture);
    }

    private sealed class Deadline(long timestamp, TimeProvider time)
    {
        public TimeSpan Remaining()
        {
            var left = timestamp - time.GetTimestamp();
            return left <= 0 ? TimeSpan.Zero : TimeSpan.FromSeconds((double)left / time.TimestampFrequency);
        }
    }
}
