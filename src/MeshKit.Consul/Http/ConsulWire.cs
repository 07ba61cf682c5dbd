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
}
