using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace MeshKit.Cli;

/// <summary>Durations on the command line: <c>500ms</c>, <c>30s</c>, <c>5m</c>, <c>2h</c>, <c>30d</c>, or <c>hh:mm:ss</c>; and how they are shown.</summary>
internal static class Durations
{
    public static Option<TimeSpan> Option(string name, TimeSpan defaultValue, string description) => new(name)
    {
        Description = $"{description} Default {Format(defaultValue)}.",
        HelpName = "duration",
        DefaultValueFactory = _ => defaultValue,
        CustomParser = Parse,
    };

    public static bool TryParse(string text, out TimeSpan value)
    {
        value = default;
        var (number, scale) = text switch
        {
            _ when text.EndsWith("ms", StringComparison.Ordinal) => (text[..^2], 1.0),
            _ when text.EndsWith('s') => (text[..^1], 1000.0),
            _ when text.EndsWith('m') => (text[..^1], 60_000.0),
            _ when text.EndsWith('h') => (text[..^1], 3_600_000.0),
            _ when text.EndsWith('d') => (text[..^1], 86_400_000.0),
            _ => (string.Empty, 0.0),
        };
        if (scale > 0)
        {
            if (double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var amount) && amount >= 0 && amount < 1e9)
            {
                value = TimeSpan.FromMilliseconds(amount * scale);
                return true;
            }

            return false;
        }

        return TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out value) && value >= TimeSpan.Zero;
    }

    /// <summary>Shows a duration the way people read it: <c>4h 12m</c>, <c>3m 05s</c>, <c>12s</c>, <c>800ms</c>.</summary>
    public static string Format(TimeSpan value)
    {
        var negative = value < TimeSpan.Zero;
        var d = negative ? value.Negate() : value;
        var text = d.TotalDays >= 1 ? (d.Hours == 0 ? $"{(int)d.TotalDays}d" : $"{(int)d.TotalDays}d {d.Hours}h")
            : d.TotalHours >= 1 ? $"{(int)d.TotalHours}h {d.Minutes:00}m"
            : d.TotalMinutes >= 1 ? $"{(int)d.TotalMinutes}m {d.Seconds:00}s"
            : d.TotalSeconds >= 1 ? $"{(int)d.TotalSeconds}s"
            : $"{(int)d.TotalMilliseconds}ms";
        return negative ? "-" + text : text;
    }

    private static TimeSpan Parse(ArgumentResult result)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : string.Empty;
        if (TryParse(text, out var value))
        {
            return value;
        }

        result.AddError($"'{text}' is not a duration; write 500ms, 30s, 5m, 2h, 30d or hh:mm:ss.");
        return default;
    }
}
