using System.Reflection;
using System.Text.RegularExpressions;
using MeshKit.Transport;

namespace MeshKit.Tests.Docs;

/// <summary>
/// docs/troubleshooting.md stays complete and true: a row for every <see cref="MeshCallReasons"/> constant and for every
/// log event id declared in <c>src/</c>, no row for one that no longer exists, and no reason that bypasses
/// <see cref="MeshCallReasons"/> (so a new reason cannot be added undocumented).
/// </summary>
[Trait("Area", "Docs")]
public sealed partial class TroubleshootingDocsTests
{
    private const string Page = "docs/troubleshooting.md";
    private const string ReasonsHeading = "## `MeshCallException` reasons";
    private const string EventsHeading = "## Log events";

    /// <summary>
    /// The places that hand on a reason they did not choose, as "file: argument": a refused WebSocket upgrade carries the
    /// reason the destination's endpoint answered (itself one of <see cref="MeshCallReasons"/>, by the scan below), and a
    /// <c>MeshRefusal</c> writes its own <c>Reason</c>.
    /// </summary>
    private static readonly HashSet<string> PassThroughs = new(StringComparer.Ordinal)
    {
        "ProtocolUpgrade.cs: reason",
        "MeshAuthorizer.cs: Reason",
    };

    [Fact]
    public void Every_MeshCallReasons_constant_has_a_row_and_every_reason_row_is_a_constant()
    {
        var constants = typeof(MeshCallReasons).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral && f.FieldType == typeof(string))
            .ToDictionary(f => (string)f.GetRawConstantValue()!, f => f.Name, StringComparer.Ordinal);
        Assert.NotEmpty(constants);
        var rows = ReasonRows(Section(ReasonsHeading));

        var problems = new List<string>();
        problems.AddRange(constants.Where(c => !rows.Contains(c.Key)).Select(c =>
            $"MeshCallReasons.{c.Value} (\"{c.Key}\") has no row in {Page} under {ReasonsHeading}: add | `{c.Key}` | meaning | cause | fix |"));
        problems.AddRange(rows.Where(r => !constants.ContainsKey(r)).Select(r =>
            $"{Page} has a row for reason `{r}` under {ReasonsHeading}, but MeshCallReasons has no such constant: remove the row or add the constant."));
        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    [Fact]
    public void Every_log_event_id_in_src_has_a_row_and_every_event_row_is_declared_in_src()
    {
        var declared = DeclaredEventIds();
        Assert.True(declared.Count > 50, $"only {declared.Count} [LoggerMessage] event ids found under src/: is the scan broken?");
        var rows = EventRows(Section(EventsHeading));

        var problems = new List<string>();
        problems.AddRange(declared.Where(d => !rows.Contains(d.Key)).OrderBy(d => d.Key).Select(d =>
            $"Event id {d.Key} ({string.Join(", ", d.Value)}) has no row in {Page} under {EventsHeading}: add | {d.Key} | level | message | cause | fix |"));
        problems.AddRange(rows.Where(r => !declared.ContainsKey(r)).Order().Select(r =>
            $"{Page} has a row for event id {r}, but no [LoggerMessage] under src/ declares it: remove the row."));
        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    [Fact]
    public void Every_LoggerMessage_in_src_has_an_event_id_of_its_own()
    {
        var problems = new List<string>();
        var owners = new Dictionary<int, string>();
        foreach (var (file, code) in Sources())
        {
            foreach (Match attribute in LoggerMessageAttribute().Matches(code))
            {
                var where = $"{file}:{Line(code, attribute.Index)}";
                var id = EventIdIn(attribute.Value);
                if (id is not { } eventId)
                {
                    problems.Add($"{where}: [LoggerMessage] without an EventId (docs/observability.md lists the ranges).");
                }
                else if (!owners.TryAdd(eventId, where))
                {
                    problems.Add($"{where}: event id {eventId} is already declared at {owners[eventId]}.");
                }
            }
        }

        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    [Fact]
    public void Every_MeshCallException_and_mesh_refusal_in_src_takes_its_reason_from_MeshCallReasons()
    {
        // (what is constructed, which argument is the reason)
        (Regex Site, int Argument)[] sites =
        [
            (NewMeshCallException(), 0),
            (TargetTypedMeshCallException(), 0),
            (NewMeshRefusal(), 1),
            (MeshProblemWrite(), 2),
        ];
        var problems = new List<string>();
        var found = 0;
        foreach (var (file, code) in Sources())
        {
            foreach (var (site, argument) in sites)
            {
                foreach (Match match in site.Matches(code))
                {
                    found++;
                    var arguments = Arguments(code, match.Index + match.Length);
                    var reason = arguments.Count > argument ? arguments[argument] : "(none)";
                    if (!MeshCallReasonsMember().IsMatch(reason) && !PassThroughs.Contains($"{Path.GetFileName(file)}: {reason}"))
                    {
                        problems.Add($"{file}:{Line(code, match.Index)}: the reason is {reason}; use a MeshCallReasons constant (and give it a row in {Page}).");
                    }
                }
            }
        }

        Assert.True(found >= 10, $"only {found} construction sites found: is the scan broken?");
        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    /// <summary>The event ids of <c>[LoggerMessage]</c> attributes under <c>src/</c>, each with the files declaring it.</summary>
    private static Dictionary<int, List<string>> DeclaredEventIds()
    {
        var declared = new Dictionary<int, List<string>>();
        foreach (var (file, code) in Sources())
        {
            foreach (Match attribute in LoggerMessageAttribute().Matches(code))
            {
                if (EventIdIn(attribute.Value) is { } id)
                {
                    (declared.TryGetValue(id, out var files) ? files : declared[id] = []).Add(file);
                }
            }
        }

        return declared;
    }

    private static int? EventIdIn(string attribute)
    {
        var match = EventIdArgument().Match(attribute);
        return match.Success ? int.Parse(match.Groups["id"].Value, System.Globalization.CultureInfo.InvariantCulture) : null;
    }

    private static HashSet<string> ReasonRows(string section) =>
        ReasonRow().Matches(section).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);

    private static HashSet<int> EventRows(string section) =>
        EventRow().Matches(section).Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToHashSet();

    /// <summary>The text of the page from <paramref name="heading"/> to the next heading of the same level.</summary>
    private static string Section(string heading)
    {
        var text = File.ReadAllText(Root(Page)).Replace("\r\n", "\n", StringComparison.Ordinal);
        var start = text.IndexOf("\n" + heading + "\n", StringComparison.Ordinal);
        Assert.True(start >= 0, $"{Page} has no heading '{heading}'.");
        var end = text.IndexOf("\n## ", start + heading.Length + 1, StringComparison.Ordinal);
        return end < 0 ? text[start..] : text[start..end];
    }

    /// <summary>Every C# file under <c>src/</c> (build output left out), as (path from the root, text).</summary>
    private static IEnumerable<(string File, string Code)> Sources()
    {
        var root = Root(string.Empty);
        var separator = Path.DirectorySeparatorChar;
        return Directory.EnumerateFiles(Root("src"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{separator}bin{separator}", StringComparison.Ordinal) && !f.Contains($"{separator}obj{separator}", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .Select(f => (Path.GetRelativePath(root, f).Replace('\\', '/'), File.ReadAllText(f)));
    }

    /// <summary>
    /// The top-level arguments of a call whose opening parenthesis ends just before <paramref name="start"/>, trimmed: the
    /// scan skips string literals and nested brackets, and stops at the closing parenthesis.
    /// </summary>
    private static List<string> Arguments(string code, int start)
    {
        var arguments = new List<string>();
        var depth = 0;
        var begin = start;
        for (var i = start; i < code.Length; i++)
        {
            var c = code[i];
            if (c == '"')
            {
                // A string literal (regular or interpolated; the interpolation holes of MeshKit's messages hold no quotes).
                for (i++; i < code.Length && code[i] != '"'; i++)
                {
                    if (code[i] == '\\')
                    {
                        i++;
                    }
                }
            }
            else if (c is '(' or '[' or '{')
            {
                depth++;
            }
            else if (c is ')' or ']' or '}')
            {
                if (depth-- == 0)
                {
                    arguments.Add(code[begin..i].Trim());
                    return arguments;
                }
            }
            else if (c == ',' && depth == 0)
            {
                arguments.Add(code[begin..i].Trim());
                begin = i + 1;
            }
        }

        return arguments;
    }

    private static int Line(string code, int index) => code.AsSpan(0, index).Count('\n') + 1;

    private static string Root(string relative)
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "MeshKit.sln")))
        {
            directory = directory.Parent;
        }

        return Path.Combine(directory?.FullName ?? throw new InvalidOperationException("MeshKit.sln not found above the test's folder."), relative);
    }

    // The attribute up to its closing "]" (messages hold no "]"), so a positional id or a named EventId are both seen.
    [GeneratedRegex(@"\[LoggerMessage\([^\]]*\]")]
    private static partial Regex LoggerMessageAttribute();

    // A positional id ([LoggerMessage(1001, ...)]) or a named one (EventId = 1001).
    [GeneratedRegex(@"^\[LoggerMessage\(\s*(?<id>\d+)|\bEventId\s*=\s*(?<id>\d+)")]
    private static partial Regex EventIdArgument();

    [GeneratedRegex(@"^\|\s*`([a-z0-9_]+)`\s*\|", RegexOptions.Multiline)]
    private static partial Regex ReasonRow();

    [GeneratedRegex(@"^\|\s*(\d+)\s*\|", RegexOptions.Multiline)]
    private static partial Regex EventRow();

    [GeneratedRegex(@"\bnew\s+MeshCallException\s*\(")]
    private static partial Regex NewMeshCallException();

    [GeneratedRegex(@"\bMeshCallException\s+\w+\([^)]*\)\s*=>\s*new\s*\(")]
    private static partial Regex TargetTypedMeshCallException();

    [GeneratedRegex(@"\bnew\s+MeshRefusal\s*\(")]
    private static partial Regex NewMeshRefusal();

    [GeneratedRegex(@"\bMeshProblem\.WriteAsync\s*\(")]
    private static partial Regex MeshProblemWrite();

    [GeneratedRegex(@"^MeshCallReasons\.[A-Z]\w*$")]
    private static partial Regex MeshCallReasonsMember();
}
