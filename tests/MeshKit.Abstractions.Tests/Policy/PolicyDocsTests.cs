using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using MeshKit.Policy;

namespace MeshKit.Abstractions.Tests.Policy;

/// <summary>
/// The docs' settings tables held against <see cref="PolicyModel"/>. The reference tables ("Every setting") are rendered
/// from the model and must match it word for word (set <c>MESHKIT_UPDATE_DOCS=1</c> to rewrite them); the explained tables
/// (resilience, outlier detection, rate limits) may name only keys of the model, with its defaults, and must list every key
/// of each section they touch.
/// </summary>
[Trait("Area", "Policy")]
public sealed partial class PolicyDocsTests
{
    public static TheoryData<string, string> ReferenceTables => new()
    {
        { "docs/traffic-policy.md", "Mesh:Policy" },
        { "docs/authorization.md", "Mesh:Authorization" },
    };

    public static TheoryData<string, string, string> ExplainedTables => new()
    {
        { "docs/traffic-policy.md", "## Resilience", "Mesh:Policy:Destinations:<name>" },
        { "docs/traffic-policy.md", "## Outlier detection", "Mesh:Policy:Destinations:<name>" },
        { "docs/authorization.md", "## Rate limits", "Mesh:Authorization:Rules:<n>:RateLimit" },
    };

    [Theory]
    [MemberData(nameof(ReferenceTables))]
    public void The_reference_table_is_the_one_the_model_renders(string file, string section)
    {
        var path = PolicyModelWalk.RepositoryFile(file);
        var text = File.ReadAllText(path).ReplaceLineEndings("\n");
        var start = $"<!-- every-setting {section}: rendered from MeshKit.Policy.PolicyModel by PolicyDocsTests -->\n";
        const string End = "<!-- /every-setting -->";
        var from = text.IndexOf(start, StringComparison.Ordinal);
        Assert.True(from >= 0, $"{file} has no '{start.Trim()}' marker.");
        var to = text.IndexOf(End, from, StringComparison.Ordinal);
        var actual = text[(from + start.Length)..to];
        var expected = Render(section);
        if (actual != expected && Environment.GetEnvironmentVariable("MESHKIT_UPDATE_DOCS") == "1")
        {
            File.WriteAllText(path, text[..(from + start.Length)] + expected + text[to..]);
            return;
        }

        Assert.True(actual == expected, $"{file}: the table of every {section} setting differs from the model. Set MESHKIT_UPDATE_DOCS=1 and run this test to rewrite it, or paste:{Environment.NewLine}{expected}");
    }

    [Theory]
    [MemberData(nameof(ExplainedTables))]
    public void An_explained_table_names_only_keys_of_the_model_with_its_defaults_and_every_key_of_the_sections_it_touches(string file, string heading, string section)
    {
        var keys = PolicyModelWalk.All.Where(e => e.Path.StartsWith(section + ":", StringComparison.Ordinal)).ToDictionary(e => e.Path[(section.Length + 1)..], StringComparer.Ordinal);
        var rows = TableRows(File.ReadAllText(PolicyModelWalk.RepositoryFile(file)).ReplaceLineEndings("\n"), heading);
        var problems = new List<string>();
        var named = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (cells, line) in rows)
        {
            var parent = string.Empty;
            var tokens = Code().Matches(cells[0]);
            var defaults = Code().Matches(cells[1]);
            for (var i = 0; i < tokens.Count; i++)
            {
                var token = tokens[i];

                // "`25 ms` / `1 s`" beside two keys: one default each.
                var defaultCell = tokens.Count > 1 && defaults.Count == tokens.Count ? defaults[i].Value : cells[1];
                // "`Retry:BaseDelay` / `MaxDelay`": a bare name is a sibling of the key before it.
                var key = token.Groups[1].Value.Contains(':', StringComparison.Ordinal) || parent.Length == 0 ? token.Groups[1].Value : parent + token.Groups[1].Value;
                parent = key.Contains(':', StringComparison.Ordinal) ? key[..(key.LastIndexOf(':') + 1)] : string.Empty;
                if (!keys.TryGetValue(key, out var entry))
                {
                    problems.Add($"{file}:{line}: '{key}' is not a key of {section} in the model.");
                    continue;
                }

                named.Add(key);
                if (!DefaultMatches(entry.Key, defaultCell))
                {
                    problems.Add($"{file}:{line}: '{key}' has default '{defaultCell}' in the docs, '{entry.Key.Default ?? string.Join(", ", entry.Key.DefaultList)}'{(entry.Key.Required ? " (required)" : string.Empty)} in the model.");
                }
            }
        }

        // Every value key of each section the table touches (its first segment) must have a row.
        foreach (var section1 in named.Select(k => k.Split(':')[0]).Distinct())
        {
            foreach (var (key, entry) in keys.Where(k => (k.Key == section1 || k.Key.StartsWith(section1 + ":", StringComparison.Ordinal)) && (k.Value.IsScalar || k.Value.Key.Kind == PolicyValueKind.List)))
            {
                if (!named.Contains(key) && entry.Parent?.Kind != PolicyValueKind.List)
                {
                    problems.Add($"{file} ({heading}): '{key}' is a key of {section}:{section1} in the model, and the table has no row for it.");
                }
            }
        }

        Assert.True(named.Count >= 3, $"{file} ({heading}): only {named.Count} keys were found in the table.");
        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    /// <summary>Renders the table of every setting under a section of the model.</summary>
    internal static string Render(string section)
    {
        var builder = new StringBuilder();
        var rows = PolicyModelWalk.All.Where(e => e.Path.StartsWith(section + ":", StringComparison.Ordinal) && Shown(e)).ToList();
        builder.Append("| key | value | default |\n|---|---|---|\n");
        List<string> above = [], below = [];
        foreach (var entry in rows)
        {
            var key = entry.Path[(section.Length + 1)..];

            // A destination's keys are the same under Defaults and Destinations:<name>; show them once, after the latter.
            if (key.StartsWith("Defaults:", StringComparison.Ordinal))
            {
                continue;
            }

            // Traffic keys are a destination's (written under Defaults or Destinations:<name>), but for the few above them.
            if (section == "Mesh:Policy")
            {
                key = key.StartsWith("Destinations:<name>:", StringComparison.Ordinal) ? key["Destinations:<name>:".Length..] : $"{section}:{key}";
            }

            (key.StartsWith(section, StringComparison.Ordinal) ? above : below).Add($"| `{key}` | {Value(entry)} | {(entry.Parent?.Kind == PolicyValueKind.Map ? string.Empty : DefaultCell(entry.Key))} |");
        }

        foreach (var row in above.Concat(below))
        {
            builder.Append(row).Append('\n');
        }

        return builder.ToString();
    }

    // Rows: values (a list's items are its row), lists, and sections that may be written as a string; a map's values.
    private static bool Shown(ModelEntry entry) => entry.Key.Kind switch
    {
        PolicyValueKind.List => entry.Key.Item!.Kind != PolicyValueKind.Section,
        PolicyValueKind.Section => entry.Key.Shorthand,
        PolicyValueKind.Map => false,
        _ => entry.Parent?.Kind != PolicyValueKind.List,
    };

    private static string Value(ModelEntry entry)
    {
        var key = entry.Key;
        var value = key.Kind switch
        {
            PolicyValueKind.Duration => $"duration, {Duration(key.MinimumDuration)} to {Duration(key.MaximumDuration)}",
            PolicyValueKind.Integer => $"whole number, {Number(key.Minimum)} to {Number(key.Maximum)}",
            PolicyValueKind.Number => $"number, {Number(key.Minimum)} to {Number(key.Maximum)}",
            PolicyValueKind.Boolean => key.Text ?? "`true` or `false`",
            PolicyValueKind.Choice => $"one of {string.Join(", ", key.Choices.Select(c => $"`{c}`"))}",
            PolicyValueKind.List => key.Item!.Kind == PolicyValueKind.Choice ? $"list of {string.Join(", ", key.Item.Choices.Select(c => $"`{c}`"))}" : $"list, each {key.Item.Text}",
            _ => key.Text ?? string.Empty,
        };

        // A map's value row says what the map is (Split's weights, per subset).
        return entry.Parent is { Kind: PolicyValueKind.Map, Text: { } mapText } && entry.IsScalar ? $"{value}: {mapText}" : value;
    }

    private static string DefaultCell(PolicyKey key) =>
        key.Required ? "(required)" : key.Default is { } d ? $"`{d}`" : key.DefaultList.IsEmpty ? string.Empty : string.Join(", ", key.DefaultList.Select(v => $"`{v}`"));

    private static string Duration(TimeSpan value)
    {
        var text = value.ToString(value.Days > 0 ? @"d\.hh\:mm\:ss" : @"hh\:mm\:ss", CultureInfo.InvariantCulture);
        return value.Milliseconds > 0 ? $"{text}.{value.Milliseconds:000}" : text;
    }

    private static string Number(double value) => value.ToString("#,0.###", CultureInfo.InvariantCulture);

    private static bool DefaultMatches(PolicyKey key, string cell)
    {
        if (key.Required)
        {
            return cell.Contains("(required)", StringComparison.Ordinal);
        }

        if (!key.DefaultList.IsEmpty)
        {
            // "all three" and the like when the default list is every choice; otherwise the list as written (`A`, `B`).
            if (key.DefaultList.Length == key.Item!.Choices.Length)
            {
                return cell.StartsWith("all", StringComparison.Ordinal);
            }

            return Code().Matches(cell).Select(m => m.Groups[1].Value).SequenceEqual(key.DefaultList, StringComparer.Ordinal);
        }

        var written = Code().Matches(cell).Select(m => m.Groups[1].Value).ToList();
        var text = written.Count > 0 ? written[0] : cell.Trim();
        if (key.Default is null)
        {
            return text.Length == 0;
        }

        return key.Kind switch
        {
            PolicyValueKind.Duration => ParseDuration(text) == TimeSpan.Parse(key.Default, CultureInfo.InvariantCulture),
            PolicyValueKind.Integer or PolicyValueKind.Number => double.TryParse(text.Replace(",", string.Empty, StringComparison.Ordinal), NumberStyles.Float, CultureInfo.InvariantCulture, out var number)
                && number == double.Parse(key.Default, CultureInfo.InvariantCulture),
            _ => string.Equals(text, key.Default, StringComparison.Ordinal),
        };
    }

    // "00:00:30", "25 ms", "1 s"
    private static TimeSpan? ParseDuration(string text)
    {
        var unit = DurationWithUnit().Match(text);
        if (unit.Success)
        {
            var amount = double.Parse(unit.Groups[1].Value, CultureInfo.InvariantCulture);
            return unit.Groups[2].Value == "ms" ? TimeSpan.FromMilliseconds(amount) : TimeSpan.FromSeconds(amount);
        }

        return TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var parsed) ? parsed : null;
    }

    // The rows of the first table after a heading, as cells (first cell, second cell, ...) and their line numbers.
    private static List<(string[] Cells, int Line)> TableRows(string text, string heading)
    {
        var lines = text.Split('\n');
        var start = Array.FindIndex(lines, l => l == heading || l.StartsWith(heading + " ", StringComparison.Ordinal));
        Assert.True(start >= 0, $"no '{heading}' heading");
        var rows = new List<(string[], int)>();
        var seenTable = false;
        for (var i = start + 1; i < lines.Length && !lines[i].StartsWith("## ", StringComparison.Ordinal); i++)
        {
            if (!lines[i].StartsWith('|'))
            {
                if (seenTable)
                {
                    break;
                }

                continue;
            }

            seenTable = true;
            var cells = lines[i].Trim('|').Split('|').Select(c => c.Trim()).ToArray();
            if (cells[0] is "setting" or "key" || cells[0].StartsWith("---", StringComparison.Ordinal))
            {
                continue;
            }

            rows.Add((cells, i + 1));
        }

        return rows;
    }

    [GeneratedRegex("`([^`]+)`")]
    private static partial Regex Code();

    [GeneratedRegex(@"^([0-9.]+) (ms|s)$")]
    private static partial Regex DurationWithUnit();
}
