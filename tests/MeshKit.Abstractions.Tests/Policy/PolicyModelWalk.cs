using System.Collections;
using System.Globalization;
using System.Reflection;
using MeshKit.Policy;
using Microsoft.Extensions.Configuration;

namespace MeshKit.Abstractions.Tests.Policy;

/// <summary>One key of <see cref="PolicyModel"/> with where it sits.</summary>
/// <param name="Path">The path as the docs write it (<c>Mesh:Policy:Destinations:&lt;name&gt;:Timeout</c>).</param>
/// <param name="Concrete">The same path with an example name for each map item and 0 for each list item.</param>
/// <param name="Key">The key.</param>
/// <param name="Parent">The section, list or map it is in (<see langword="null"/> for the root).</param>
/// <param name="Ancestors">The keys from the root down to the parent.</param>
/// <param name="Owner">The record its <see cref="PolicyKey.Properties"/> belong to.</param>
internal sealed record ModelEntry(string Path, string Concrete, PolicyKey Key, PolicyKey? Parent, IReadOnlyList<(PolicyKey Key, string Concrete)> Ancestors, Type? Owner)
{
    /// <summary>Gets the record a map item's name fills (<see cref="PolicyKey.KeyProperties"/>).</summary>
    public Type? KeyOwner => Key.Record ?? Owner;

    /// <summary>Gets whether the key holds one value (not a section, list or map).</summary>
    public bool IsScalar => Key.Kind is not (PolicyValueKind.Section or PolicyValueKind.List or PolicyValueKind.Map);

    public override string ToString() => Path;
}

/// <summary>Walks <see cref="PolicyModel"/>, builds documents from it, and projects snapshots onto record properties.</summary>
internal static class PolicyModelWalk
{
    public static IReadOnlyList<ModelEntry> All { get; } = [.. Walk(PolicyModel.Mesh, "Mesh", "Mesh", null, [], null)];

    /// <summary>Gets the path of a file in the repository.</summary>
    public static string RepositoryFile(string relative)
    {
        var root = typeof(PolicyModelWalk).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "RepositoryRoot").Value!;
        return System.IO.Path.Combine(root, relative);
    }

    private static IEnumerable<ModelEntry> Walk(PolicyKey key, string path, string concrete, PolicyKey? parent, IReadOnlyList<(PolicyKey, string)> ancestors, Type? owner)
    {
        yield return new ModelEntry(path, concrete, key, parent, ancestors, owner);
        var childOwner = key.Record ?? owner;
        IReadOnlyList<(PolicyKey, string)> below = [.. ancestors, (key, concrete)];
        switch (key.Kind)
        {
            case PolicyValueKind.Section:
                foreach (var child in key.Keys)
                {
                    foreach (var entry in Walk(child, $"{path}:{child.Name}", $"{concrete}:{child.Name}", key, below, childOwner))
                    {
                        yield return entry;
                    }
                }

                break;
            case PolicyValueKind.List:
                foreach (var entry in Walk(key.Item!, $"{path}:<n>", $"{concrete}:0", key, below, childOwner))
                {
                    yield return entry;
                }

                break;
            case PolicyValueKind.Map:
                foreach (var entry in Walk(key.Item!, $"{path}:{key.Item!.Name}", $"{concrete}:{key.Examples[0]}", key, below, childOwner))
                {
                    yield return entry;
                }

                break;
        }
    }

    /// <summary>Reads settings (full keys from <c>Mesh</c>) with the reader.</summary>
    public static PolicyReadResult Read(IReadOnlyDictionary<string, string?> settings) =>
        PolicyReader.Read(new ConfigurationBuilder().AddInMemoryCollection(settings).Build().GetSection("Mesh"));

    /// <summary>Gets a valid value for a scalar key: its default, else its first example, else a bound.</summary>
    public static string Sample(PolicyKey key) => key.Default ?? (key.Examples.IsEmpty ? null : key.Examples[0]) ?? key.Kind switch
    {
        PolicyValueKind.Duration => key.MinimumDuration.ToString("c", CultureInfo.InvariantCulture),
        PolicyValueKind.Integer or PolicyValueKind.Number => Format(key.Maximum),
        PolicyValueKind.Boolean => "true",
        PolicyValueKind.Choice => key.Choices[0],
        _ => throw new InvalidOperationException($"{key}: give it an example so tests can write a valid value."),
    };

    /// <summary>Gets the values a test tries for a scalar key: default, examples and bounds.</summary>
    public static IEnumerable<string> Candidates(PolicyKey key)
    {
        IEnumerable<string> values = key.Kind switch
        {
            PolicyValueKind.Duration =>
            [
                .. new[] { key.MinimumDuration, key.MaximumDuration, (key.MinimumDuration + key.MaximumDuration) / 2, key.MinimumDuration + TimeSpan.FromMilliseconds(1) }
                    .Select(d => d.ToString("c", CultureInfo.InvariantCulture)),
            ],
            PolicyValueKind.Integer => [Format(key.Minimum), Format(key.Maximum), Format(Math.Floor((key.Minimum + key.Maximum) / 2)), Format(key.Minimum + 1)],
            PolicyValueKind.Number => [Format(key.Minimum), Format(key.Maximum), Format((key.Minimum + key.Maximum) / 2)],
            PolicyValueKind.Boolean => ["true", "false"],
            PolicyValueKind.Choice => key.Choices,
            _ => [],
        };

        return new[] { key.Default }.Concat(key.Examples).Concat(values).OfType<string>().Distinct(StringComparer.Ordinal);
    }

    /// <summary>Settings (full keys) that give a key a valid value: a sample, or for a section its first value and its required keys.</summary>
    public static Dictionary<string, string?> Content(PolicyKey key, string concrete)
    {
        switch (key.Kind)
        {
            case PolicyValueKind.List:
                return key.Item!.Kind == PolicyValueKind.Section ? Content(key.Item, $"{concrete}:0") : new() { [$"{concrete}:0"] = Sample(key.Item) };
            case PolicyValueKind.Map:
                return Content(key.Item!, $"{concrete}:{key.Examples[0]}");
            case PolicyValueKind.Section:
                var first = key.Keys.FirstOrDefault(k => k.Kind is not (PolicyValueKind.Section or PolicyValueKind.List or PolicyValueKind.Map)) ?? key.Keys[0];
                var content = Content(first, $"{concrete}:{first.Name}");
                foreach (var required in key.Keys.Where(k => k.Required && k != first))
                {
                    content[$"{concrete}:{required.Name}"] = Sample(required);
                }

                return content;
            default:
                return new(StringComparer.OrdinalIgnoreCase) { [concrete] = Sample(key) };
        }
    }

    /// <summary>
    /// Settings that an entry's enclosing sections need to be valid: their required keys. With <paramref name="except"/>,
    /// the key itself is left out.
    /// </summary>
    public static Dictionary<string, string?> Required(ModelEntry entry, PolicyKey? except = null)
    {
        var settings = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        IEnumerable<(PolicyKey Key, string Concrete)> sections = [.. entry.Ancestors, (entry.Key, entry.Concrete)];
        foreach (var (section, concrete) in sections.Where(s => s.Key.Kind == PolicyValueKind.Section))
        {
            foreach (var required in section.Keys.Where(k => k.Required && k != except && k != entry.Key))
            {
                settings[$"{concrete}:{required.Name}"] = Sample(required);
            }
        }

        // A rule's From must match someone; every rule the tests write matches 'frontend' unless the test sets From itself.
        if (entry.Concrete.StartsWith("Mesh:Authorization:Rules:0", StringComparison.Ordinal))
        {
            settings.TryAdd("Mesh:Authorization:Rules:0:From:Services:0", "frontend");
        }

        return settings;
    }

    /// <summary>
    /// The snapshot as (record.property, value) pairs, every record reached from it included, so two snapshots can be
    /// compared on the properties a key names. The version (a hash of the input) is left out.
    /// </summary>
    public static List<(string Property, string Value)> Leaves(PolicySnapshot snapshot)
    {
        var leaves = new List<(string, string)>();
        Collect(snapshot, leaves);
        return leaves;
    }

    // A property that holds records gets a leaf of its own with their whole content, so a key that fills it is seen to.
    private static void Collect(object record, List<(string, string)> leaves)
    {
        var type = record.GetType();
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetIndexParameters().Length > 0 || (type == typeof(PolicySnapshot) && property.Name == nameof(PolicySnapshot.Version)))
            {
                continue;
            }

            var name = $"{type.Name}.{property.Name}";
            var value = property.GetValue(record);
            switch (value)
            {
                case null:
                    leaves.Add((name, "null"));
                    break;
                case string or TimeSpan or Enum or System.Text.RegularExpressions.Regex or bool or int or double or GrpcStatusSet:
                    leaves.Add((name, Convert.ToString(value, CultureInfo.InvariantCulture)!));
                    break;
                case IDictionary dictionary:
                    var entries = dictionary.Keys.Cast<object>().Select(k => (Key: Convert.ToString(k, CultureInfo.InvariantCulture)!, Value: dictionary[k]!)).OrderBy(e => e.Key, StringComparer.Ordinal).ToList();
                    Nested(name, entries.Select(e => e.Value), leaves, string.Join(",", entries.Select(e => e.Key)));
                    break;
                case IEnumerable items:
                    var list = items.Cast<object>().ToList();
                    if (list.Count > 0 && IsRecord(list[0].GetType()))
                    {
                        Nested(name, list, leaves, $"{list.Count} item(s)");
                    }
                    else
                    {
                        leaves.Add((name, string.Join(",", list.Select(i => Convert.ToString(i, CultureInfo.InvariantCulture)))));
                    }

                    break;
                default:
                    Assert.True(IsRecord(value.GetType()), $"{name}: teach {nameof(Leaves)} about {value.GetType()}.");
                    Nested(name, [value], leaves, string.Empty);
                    break;
            }
        }
    }

    private static void Nested(string name, IEnumerable<object> records, List<(string, string)> leaves, string summary)
    {
        var inner = new List<(string Property, string Value)>();
        foreach (var record in records)
        {
            Collect(record, inner);
        }

        leaves.Add((name, $"{summary}{{{string.Join("; ", inner.Select(l => $"{l.Property}={l.Value}"))}}}"));
        leaves.AddRange(inner);
    }

    /// <summary>Gets whether a type is one of the policy's records (a MeshKit class, not an enum).</summary>
    public static bool IsRecord(Type type) => type.IsClass && type != typeof(string) && type.Namespace?.StartsWith("MeshKit", StringComparison.Ordinal) == true;

    private static string Format(double value) => value.ToString(CultureInfo.InvariantCulture);
}
