using System.Collections.Frozen;
using System.Collections.Immutable;
using System.Reflection;
using MeshKit.Policy;

namespace MeshKit.Abstractions.Tests.Policy;

/// <summary>
/// The records are the source of the policy's shape: <see cref="PolicyModel"/> describes them key by key, and these tests
/// hold the records and the reader to it. A property added to a record fails the first test until the model has a key for
/// it; a key in the model that the reader does not read, or reads into another property, fails the third.
/// </summary>
[Trait("Area", "Policy")]
public sealed class PolicyModelTests
{
    [Fact]
    public void Every_public_property_of_the_policy_records_is_filled_by_a_key_of_the_model_or_named_as_derived()
    {
        var covered = new Dictionary<Type, HashSet<string>>();
        var problems = new List<string>();
        HashSet<string> Of(Type type) => covered.TryGetValue(type, out var set) ? set : covered[type] = [];
        foreach (var entry in PolicyModelWalk.All)
        {
            if (entry.Key.Record is { } record)
            {
                Of(record).UnionWith(entry.Key.Derived.Keys);
            }

            if (!entry.Key.Properties.IsEmpty)
            {
                if (entry.Owner is null)
                {
                    problems.Add($"{entry.Path}: names properties, but no key above it names the record they belong to.");
                    continue;
                }

                Of(entry.Owner).UnionWith(entry.Key.Properties);
            }

            if (!entry.Key.KeyProperties.IsEmpty)
            {
                Of(entry.KeyOwner!).UnionWith(entry.Key.KeyProperties);
            }
        }

        foreach (var record in RecordsReachableFromTheSnapshot())
        {
            if (!covered.ContainsKey(record))
            {
                problems.Add($"{record.Name}: a policy record no key of PolicyModel builds; give the key that holds it a Record.");
            }
        }

        foreach (var (record, names) in covered)
        {
            var properties = record.GetProperties(BindingFlags.Public | BindingFlags.Instance).Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
            problems.AddRange(properties.Except(names).Order(StringComparer.Ordinal).Select(p =>
                $"{record.Name}.{p}: no key of PolicyModel fills it. Add a key (and read it in PolicyReader, describe it in src/MeshKit/ConfigurationSchema.json and the docs' tables), or name it in the record key's Derived."));
            problems.AddRange(names.Except(properties).Order(StringComparer.Ordinal).Select(p => $"{record.Name}.{p}: PolicyModel names it, but the record has no such public property."));
        }

        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    [Fact]
    public void Every_section_of_the_model_refuses_an_unknown_key_listing_the_models_keys()
    {
        var problems = new List<string>();
        var sections = PolicyModelWalk.All.Where(e => e.Key.Kind == PolicyValueKind.Section && e.Parent is not null).ToList();
        foreach (var entry in sections)
        {
            var result = PolicyModelWalk.Read(new Dictionary<string, string?> { [$"{entry.Concrete}:Bogus"] = "1" });
            var error = result.Errors.FirstOrDefault(e => e.Path == $"{entry.Concrete}:Bogus");
            var expected = $"is not a known setting here; known settings are {string.Join(", ", entry.Key.Names)}.";
            if (error?.Message != expected)
            {
                problems.Add($"{entry.Path}: expected '{expected}', got {(error is null ? "no error on the key" : $"'{error.Message}'")}.");
            }
        }

        Assert.True(sections.Count >= 20, $"only {sections.Count} sections were walked");
        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    [Fact]
    public void Every_key_of_the_model_is_read_into_the_properties_it_names()
    {
        var problems = new List<string>();
        var checkedKeys = 0;
        foreach (var entry in PolicyModelWalk.All)
        {
            // A list of values is tried as a whole; its items are not keys of their own.
            if (entry.Parent?.Kind == PolicyValueKind.List && entry.IsScalar)
            {
                continue;
            }

            // A section's own keys are checked one by one; a list of sections or a map is checked with one element and with two.
            if (!entry.Key.Properties.IsEmpty && entry.Key.Kind != PolicyValueKind.Section)
            {
                checkedKeys++;
                var candidates = entry.Key.Kind switch
                {
                    PolicyValueKind.List when entry.Key.Item!.Kind == PolicyValueKind.Section =>
                        [PolicyModelWalk.Content(entry.Key.Item, $"{entry.Concrete}:0"), Merge(PolicyModelWalk.Content(entry.Key.Item, $"{entry.Concrete}:0"), PolicyModelWalk.Content(entry.Key.Item, $"{entry.Concrete}:1"))],
                    PolicyValueKind.List => PolicyModelWalk.Candidates(entry.Key.Item!).Select(v => new Dictionary<string, string?> { [$"{entry.Concrete}:0"] = v }),
                    PolicyValueKind.Map =>
                        [PolicyModelWalk.Content(entry.Key.Item!, $"{entry.Concrete}:{entry.Key.Examples[0]}"), Merge(PolicyModelWalk.Content(entry.Key.Item!, $"{entry.Concrete}:{entry.Key.Examples[0]}"), PolicyModelWalk.Content(entry.Key.Item!, $"{entry.Concrete}:{entry.Key.Examples[1]}"))],
                    _ => PolicyModelWalk.Candidates(entry.Key).Select(v => new Dictionary<string, string?> { [entry.Concrete] = v }),
                };
                if (entry.Key == PolicyModel.HeaderKeys.Present)
                {
                    // Present has one valid value (true): it is read if false is refused on its path.
                    var refused = PolicyModelWalk.Read(new Dictionary<string, string?> { [entry.Concrete] = "false" });
                    if (!refused.Errors.Any(e => e.Path == entry.Concrete))
                    {
                        problems.Add($"{entry.Path}: false is not refused, so the reader does not read it.");
                    }

                    continue;
                }

                problems.AddRange(Differs(entry, candidates, entry.Owner!, entry.Key.Properties));
            }

            if (!entry.Key.KeyProperties.IsEmpty)
            {
                // A map item's name fills a property: two example names must give two values.
                checkedKeys++;
                var map = entry.Parent!;
                var prefix = entry.Concrete[..^(map.Examples[0].Length + 1)];
                var candidates = map.Examples.Select(name => PolicyModelWalk.Content(entry.Key, $"{prefix}:{name}"));
                problems.AddRange(Differs(entry, candidates, entry.KeyOwner!, entry.Key.KeyProperties));
            }
        }

        Assert.True(checkedKeys >= 50, $"only {checkedKeys} keys were checked");
        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    [Fact]
    public void Every_default_the_model_states_is_what_the_reader_applies_when_the_key_is_left_out()
    {
        var problems = new List<string>();
        var checkedKeys = 0;
        foreach (var entry in PolicyModelWalk.All.Where(e => e.Key.Default is not null || !e.Key.DefaultList.IsEmpty))
        {
            checkedKeys++;
            var leftOut = PolicyModelWalk.Required(entry);

            // The key's section must exist either way: give it a sibling, the same in both documents (with its own default where it has one).
            var parentPath = entry.Concrete[..entry.Concrete.LastIndexOf(':')];
            if (entry.Parent is { Kind: PolicyValueKind.Section } parent
                && !leftOut.Keys.Any(k => k.StartsWith(parentPath + ":", StringComparison.OrdinalIgnoreCase)))
            {
                var sibling = parent.Keys.FirstOrDefault(k => k != entry.Key && k.Default is not null) ?? parent.Keys.First(k => k != entry.Key);
                foreach (var (key, anchor) in PolicyModelWalk.Content(sibling, $"{parentPath}:{sibling.Name}"))
                {
                    leftOut[key] = anchor;
                }
            }

            var written = new Dictionary<string, string?>(leftOut, StringComparer.OrdinalIgnoreCase);
            if (entry.Key.Default is { } value)
            {
                written[entry.Concrete] = value;
            }
            else
            {
                for (var i = 0; i < entry.Key.DefaultList.Length; i++)
                {
                    written[$"{entry.Concrete}:{i}"] = entry.Key.DefaultList[i];
                }
            }

            var without = PolicyModelWalk.Read(leftOut);
            var with = PolicyModelWalk.Read(written);
            if (!without.IsValid || !with.IsValid)
            {
                problems.Add($"{entry.Path}: the test's documents do not validate: {string.Join("; ", without.Errors.Concat(with.Errors))}");
                continue;
            }

            // Values only: a leaf that holds records repeats what its records' leaves say.
            var difference = PolicyModelWalk.Leaves(with.Snapshot!).Except(PolicyModelWalk.Leaves(without.Snapshot!)).Where(l => !l.Value.EndsWith('}')).ToList();
            if (difference.Count > 0)
            {
                problems.Add($"{entry.Path}: the model's default '{entry.Key.Default ?? string.Join(",", entry.Key.DefaultList)}' is not what applies when it is left out: written, {string.Join(", ", difference.Select(d => $"{d.Property} = {d.Value}"))}.");
            }
        }

        Assert.True(checkedKeys >= 30, $"only {checkedKeys} defaults were checked");
        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    [Fact]
    public void The_readers_public_key_lists_are_the_models()
    {
        Assert.Equal(["Defaults", "Destinations", "SubsetHeader"], PolicyReader.PolicyKeys);
        Assert.Equal(["Policy", "Authorization"], PolicyReader.DocumentKeys);
    }

    private static IEnumerable<string> Differs(ModelEntry entry, IEnumerable<Dictionary<string, string?>> candidates, Type owner, ImmutableArray<string> properties)
    {
        var names = properties.Select(p => $"{owner.Name}.{p}").ToHashSet(StringComparer.Ordinal);
        var projections = new HashSet<string>(StringComparer.Ordinal);
        var tried = new List<string>();
        foreach (var candidate in candidates)
        {
            var settings = PolicyModelWalk.Required(entry);
            foreach (var (key, value) in candidate)
            {
                settings[key] = value;
            }

            var result = PolicyModelWalk.Read(settings);
            tried.Add($"{string.Join(", ", candidate.Select(kv => $"{kv.Key}={kv.Value}"))}: {(result.IsValid ? "valid" : string.Join("; ", result.Errors))}");
            if (result.IsValid)
            {
                projections.Add(string.Join("|", PolicyModelWalk.Leaves(result.Snapshot!).Where(l => names.Contains(l.Property)).Select(l => $"{l.Property}={l.Value}").Order(StringComparer.Ordinal)));
            }
        }

        if (projections.Count < 2)
        {
            yield return $"{entry.Path}: no two valid values gave different {string.Join(", ", names)}; the reader does not read the key into them. Tried:{Environment.NewLine}    {string.Join(Environment.NewLine + "    ", tried)}";
        }
    }

    private static Dictionary<string, string?> Merge(Dictionary<string, string?> first, Dictionary<string, string?> second) =>
        first.Concat(second).ToDictionary(StringComparer.OrdinalIgnoreCase);

    private static HashSet<Type> RecordsReachableFromTheSnapshot()
    {
        var found = new HashSet<Type>();
        var queue = new Queue<Type>([typeof(PolicySnapshot)]);
        while (queue.TryDequeue(out var type))
        {
            if (!PolicyModelWalk.IsRecord(type) || !found.Add(type))
            {
                continue;
            }

            foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
            {
                foreach (var inner in Unwrap(property.PropertyType))
                {
                    queue.Enqueue(inner);
                }
            }
        }

        return found;
    }

    private static IEnumerable<Type> Unwrap(Type type)
    {
        if (Nullable.GetUnderlyingType(type) is { } underlying)
        {
            return Unwrap(underlying);
        }

        if (type.IsGenericType && (type.GetGenericTypeDefinition() == typeof(ImmutableArray<>) || type.GetGenericTypeDefinition() == typeof(FrozenDictionary<,>)))
        {
            return type.GetGenericArguments().SelectMany(Unwrap);
        }

        return [type];
    }
}
