using System.Globalization;
using System.Text;

namespace MeshKit.Consul;

/// <summary>How values are written on Consul's wire: Go durations, check statuses, query strings, key paths.</summary>
internal static class ConsulWire
{
    public static string FormatDuration(TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            return "0s";
        }

        var ms = (long)Math.Ceiling(value.TotalMilliseconds);
        return ms % 1000 == 0
            ? (ms / 1000).ToString(CultureInfo.InvariantCulture) + "s"
            : ms.ToString(CultureInfo.InvariantCulture) + "ms";
    }

    public static string FormatStatus(ConsulCheckStatus status) => status switch
    {
        ConsulCheckStatus.Passing => "passing",
        ConsulCheckStatus.Warning => "warning",
        _ => "critical",
    };

    /// <summary>Builds a query string from the parameters that have a value; an empty value writes a bare flag (<c>passing</c>).</summary>
    public static string? Query(params ReadOnlySpan<(string Name, string? Value)> parameters)
    {
        StringBuilder? builder = null;
        foreach (var (name, value) in parameters)
        {
            if (value is null)
            {
                continue;
            }

            builder = builder is null ? new StringBuilder() : builder.Append('&');
            builder.Append(name);
            if (value.Length > 0)
            {
                builder.Append('=').Append(Uri.EscapeDataString(value));
            }
        }

        return builder?.ToString();
    }

    /// <summary>Escapes a single path segment (a service name or ID).</summary>
    public static string Segment(string value) => Uri.EscapeDataString(value);

    /// <summary>Escapes a KV key segment by segment, keeping its slashes.</summary>
    public static string KeyPath(string key)
    {
        var parts = key.Split('/');
        for (var i = 0; i < parts.Length; i++)
        {
            parts[i] = Uri.EscapeDataString(parts[i]);
        }

        return string.Join('/', parts);
    }

    public static string? Number(ulong? value) => value?.ToString(CultureInfo.InvariantCulture);

    public static string FormatBehavior(ConsulSessionBehavior behavior) =>
        behavior == ConsulSessionBehavior.Delete ? "delete" : "release";

    /// <summary>Reads a Go duration as Consul writes it (<c>15s</c>, <c>1m30s</c>, <c>1.5s</c>, <c>250ms</c>; <c>0</c> alone).</summary>
    public static bool TryParseDuration(string? text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }

        if (text == "0")
        {
            return true;
        }

        double totalMs = 0;
        var i = 0;
        while (i < text.Length)
        {
            var start = i;
            while (i < text.Length && (char.IsAsciiDigit(text[i]) || text[i] == '.'))
            {
                i++;
            }

            if (start == i || !double.TryParse(text.AsSpan(start, i - start), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number))
            {
                return false;
            }

            var unitStart = i;
            while (i < text.Length && !char.IsAsciiDigit(text[i]) && text[i] != '.')
            {
                i++;
            }

            double scale;
            switch (text.AsSpan(unitStart, i - unitStart))
            {
                case "ns": scale = 1e-6; break;
                case "us" or "µs": scale = 1e-3; break;
                case "ms": scale = 1; break;
                case "s": scale = 1000; break;
                case "m": scale = 60_000; break;
                case "h": scale = 3_600_000; break;
                default: return false;
            }

            totalMs += number * scale;
        }

        value = TimeSpan.FromMilliseconds(totalMs);
        return true;
    }
}
