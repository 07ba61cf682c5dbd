using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Json.Schema;
using MeshKit.Consul;
using MeshKit.Discovery;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace MeshKit.Tests.Settings;

/// <summary>
/// The settings schemas the packages ship (<c>src/MeshKit/ConfigurationSchema.json</c>,
/// <c>src/MeshKit.Discovery.Consul/ConfigurationSchema.json</c>) held against what MeshKit reads: the options classes bound
/// from <c>Mesh</c> (every key, type and default of a default-constructed object), the validators (every range, found by
/// asking the validator at and past each bound), the keys the code reads straight from configuration, the docs' copy
/// (<c>docs/schema/mesh.schema.json</c>, the two merged; <c>MESHKIT_UPDATE_DOCS=1</c> rewrites it), the tables of
/// <c>docs/configuration.md</c>, and the packages' items that ship the schema. The policy sections
/// (<c>Mesh:Policy</c>, <c>Mesh:Authorization</c>) are held against the policy model by PolicySchemaTests in
/// MeshKit.Abstractions.Tests.
/// </summary>
[Trait("Area", "Configuration")]
public sealed partial class SettingsSchemaTests
{
    private const string MeshSchemaPath = "src/MeshKit/ConfigurationSchema.json";
    private const string ConsulSchemaPath = "src/MeshKit.Discovery.Consul/ConfigurationSchema.json";
    private const string DocsSchemaPath = "docs/schema/mesh.schema.json";
    private const string DurationPattern = @"^(\d+\.)?\d{1,2}:\d{2}:\d{2}(\.\d+)?$";

    /// <summary>Keys of the Mesh section that no options class binds: their checks are below, or in PolicySchemaTests.</summary>
    private static readonly string[] UnboundMeshKeys = ["Discovery", "Telemetry", "Health", "Policy", "Authorization"];

    /// <summary>Defaults the schema leaves out on purpose, each with why.</summary>
    private static readonly Dictionary<string, string> DefaultsLeftOut = new(StringComparer.Ordinal)
    {
        ["Mesh:Discovery:Consul:Address"] = "the add-on is off while the key is unset; the options' default only fills a section that sets other keys",
    };

    /// <summary>Defaults the reader applies where the options hold none (a nullable property left unset).</summary>
    private static readonly Dictionary<string, string> ReaderDefaults = new(StringComparer.Ordinal)
    {
        ["Mesh:Discovery:Static:<destination>:<i>:Weight"] = MeshEndpointMetadata.DefaultWeight.ToString(CultureInfo.InvariantCulture),
    };

    [Fact]
    public void The_schema_has_exactly_the_keys_of_the_options_with_their_types_and_defaults()
    {
        var (mesh, consul) = (Load(MeshSchemaPath), Load(ConsulSchemaPath));
        var problems = new List<string>();

        var meshNode = mesh["properties"]!["Mesh"]!.AsObject();
        CompareSection([new MeshOptions()], meshNode, "Mesh", mesh, UnboundMeshKeys, problems);

        var discovery = Resolve(meshNode["properties"]?["Discovery"], mesh);
        ExpectKeys(discovery, "Mesh:Discovery", ["Static"], problems);
        if (Resolve(discovery?["properties"]?["Static"], mesh) is { } staticNode)
        {
            var endpoint = Resolve(staticNode["additionalProperties"]?["items"], mesh);
            Expect("Mesh:Discovery:Static:<destination>", "type", "array", (string?)staticNode["additionalProperties"]?["type"], problems);
            CompareSection([new StaticEndpointOptions()], endpoint, "Mesh:Discovery:Static:<destination>:<i>", mesh, [], problems);
        }

        ExpectKeys(Resolve(meshNode["properties"]?["Telemetry"], mesh), "Mesh:Telemetry", ["ConfigureOpenTelemetry"], problems);
        ExpectKeys(Resolve(meshNode["properties"]?["Health"], mesh), "Mesh:Health", ["ReadinessPath"], problems);

        var consulNode = Resolve(consul["properties"]?["Mesh"]?["properties"]?["Discovery"]?["properties"]?["Consul"], consul);
        ExpectKeys(Resolve(consul["properties"]?["Mesh"], consul), "Mesh (Consul add-on)", ["Discovery"], problems);
        CompareSection([new ConsulOptions(), new ConsulRegistrationOptions()], consulNode, ConsulOptions.SectionPath, consul, [], problems);

        Assert.True(problems.Count == 0, "The settings schemas and the options differ:" + Environment.NewLine + string.Join(Environment.NewLine, problems));
    }

    [Fact]
    public void Every_Mesh_key_the_code_names_is_in_the_schema_with_the_default_the_code_uses()
    {
        var schema = Merged();
        var sources = Directory.GetFiles(RepositoryFile("src"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .ToDictionary(f => Path.GetRelativePath(RepositoryFile(string.Empty), f), File.ReadAllText);
        var problems = new List<string>();
        var keys = 0;
        foreach (var (file, text) in sources)
        {
            foreach (Match literal in MeshKeyLiteral().Matches(text))
            {
                keys++;
                var key = literal.Groups[1].Value;
                if (Find(schema, key) is null)
                {
                    problems.Add($"{key} ({file}): read by the code, not in the schema.");
                }
            }
        }

        // Keys read straight from IConfiguration with a default in the code: configuration["Mesh:..."] ?? "default", or
        // GetValue(Key, defaultValue: value) with Key a constant "Mesh:...".
        var constants = sources.Values.SelectMany(t => KeyConstant().Matches(t)).GroupBy(m => m.Groups[1].Value, StringComparer.Ordinal)
            .Where(g => g.Select(m => m.Groups[2].Value).Distinct(StringComparer.Ordinal).Count() == 1)
            .ToDictionary(g => g.Key, g => g.First().Groups[2].Value, StringComparer.Ordinal);
        var defaults = sources.Values.SelectMany(t => IndexerDefault().Matches(t)).Select(m => (Key: m.Groups[1].Value, Default: m.Groups[2].Value))
            .Concat(sources.Values.SelectMany(t => GetValueDefault().Matches(t)).Where(m => constants.ContainsKey(m.Groups[1].Value)).Select(m => (Key: constants[m.Groups[1].Value], Default: m.Groups[2].Value)))
            .ToList();
        foreach (var (key, value) in defaults)
        {
            Expect(key, "default", value, DefaultText(Find(schema, key)?["default"]), problems);
        }

        Assert.True(keys >= 10, $"only {keys} Mesh keys were found in src/");
        // Since every workload setting goes through MeshOptions (issue 20), no key is read straight from configuration with a
        // default of its own; the scan stays so that one added later is held to the schema's default.
        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    [Fact]
    public void The_ranges_of_the_schema_are_the_ranges_the_validators_enforce()
    {
        var problems = new List<string>();
        var checkedBounds = 0;
        var mesh = Load(MeshSchemaPath);
        foreach (var (path, node) in Scalars(Resolve(mesh["properties"]!["Mesh"], mesh)!, "Mesh", mesh))
        {
            if (path.StartsWith("Mesh:Policy", StringComparison.Ordinal) || path.StartsWith("Mesh:Authorization", StringComparison.Ordinal))
            {
                continue;
            }

            var probe = path.StartsWith("Mesh:Discovery:Static:", StringComparison.Ordinal) ? (Probe)ProbeStatic : ProbeMesh;
            checkedBounds += CheckRange(path, node, probe, problems);
        }

        var consul = Load(ConsulSchemaPath);
        foreach (var (path, node) in Scalars(Resolve(consul["properties"]!["Mesh"], consul)!, "Mesh", consul))
        {
            checkedBounds += CheckRange(path, node, ProbeConsul, problems);
        }

        Assert.True(checkedBounds >= 30, $"only {checkedBounds} bounds were checked");
        Assert.True(problems.Count == 0, "The settings schemas and the validators differ:" + Environment.NewLine + string.Join(Environment.NewLine, problems));
    }

    [Theory]
    [InlineData("Mesh:Service:Name")]
    [InlineData("Mesh:Service:Namespace")]
    [InlineData("Mesh:Client:Namespaces:<n>")]
    [InlineData("Mesh:ControlPlane:ConsulService")]
    [InlineData("Mesh:Service:Version")]
    [InlineData("Mesh:TrustDomain")]
    public void A_name_pattern_of_the_schema_accepts_what_the_name_rule_accepts(string key)
    {
        var node = Find(Merged(), key) ?? throw new InvalidOperationException($"{key} is not in the schema.");
        var pattern = new Regex((string)node["pattern"]!);
        Func<string, bool> rule = key switch
        {
            "Mesh:TrustDomain" => v => MeshNames.IsValidTrustDomain(v, out _),
            "Mesh:Service:Version" => v => v.Length == 0 || MeshNames.IsValidVersion(v, out _),
            "Mesh:Service:Name" or "Mesh:ControlPlane:ConsulService" => v => MeshNames.IsValidServiceName(v, out _),
            _ => v => MeshNames.IsValidNamespace(v, out _),
        };
        string[] samples = ["orders", "billing-v2", "a", "0", "v1.2_rc", "Orders", "-orders", "orders-", "or..ders", "orders.shop", "a_b",
            "mesh.local", "td-1_x.y", new('a', 63), new('a', 64), new('a', 255), new('a', 256), "", "ord ers", "ördérs", "v2", "1.4.0", "canary_eu", "_v"];
        var differ = samples.Where(s => pattern.IsMatch(s) != rule(s)).Select(s => $"'{s}' ({(rule(s) ? "valid" : "refused")} by the rule)");
        Assert.Empty(differ);
    }

    [Fact]
    public void The_schemas_are_valid_JSON_schemas_and_the_samples_and_docs_validate()
    {
        var problems = new List<string>();
        foreach (var path in new[] { MeshSchemaPath, ConsulSchemaPath, DocsSchemaPath, "docs/schema/mesh-policy.schema.json", "docs/schema/mesh-central-policy.schema.json" })
        {
            var result = MetaSchemas.Draft7.Evaluate(JsonDocument.Parse(File.ReadAllText(RepositoryFile(path))).RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });
            if (!result.IsValid)
            {
                problems.Add($"{path} is not a valid draft-07 JSON schema: {Describe(result)}");
            }
        }

        var schema = JsonSchema.FromText(File.ReadAllText(RepositoryFile(DocsSchemaPath)), new BuildOptions { SchemaRegistry = new SchemaRegistry() });
        var documents = Directory.GetFiles(RepositoryFile("samples"), "appsettings*.json", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal) && !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Select(f => (Name: Path.GetRelativePath(RepositoryFile(string.Empty), f), Json: File.ReadAllText(f)))
            .Concat(DocsExamples())
            .Where(d => d.Json.Contains("\"Mesh\"", StringComparison.Ordinal))
            .ToList();
        foreach (var (name, json) in documents)
        {
            var result = schema.Evaluate(JsonDocument.Parse(json).RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });
            if (!result.IsValid)
            {
                problems.Add($"{name}: not valid for {DocsSchemaPath}: {Describe(result)}");
            }
        }

        // And the schema refuses what the validators refuse.
        string[] refused =
        [
            """{ "Mesh": { "Endpoint": { "Port": 70000 } } }""",
            """{ "Mesh": { "Identity": { "RenewalFraction": 0.99 } } }""",
            """{ "Mesh": { "Client": { "NonMeshHosts": "Allow" } } }""",
            """{ "Mesh": { "Transport": { "HttpVersion": "3.0" } } }""",
            """{ "Mesh": { "ControlPlane": { "Address": "http://127.0.0.1:7443" } } }""",
            """{ "Mesh": { "Discovery": { "Consul": { "Ttl": "15s" } } } }""",
            """{ "Mesh": { "Discovery": { "Static": { "orders": [ { "Address": "10.0.0.1:443", "Weight": -1 } ] } } } }""",
        ];
        foreach (var json in refused.Where(j => schema.Evaluate(JsonDocument.Parse(j).RootElement).IsValid))
        {
            problems.Add($"the schema accepts {json}");
        }

        Assert.True(documents.Count >= 5, $"only {documents.Count} documents with a Mesh section were found");
        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    [Fact]
    public void The_docs_copy_is_the_packages_schemas_merged()
    {
        var expected = Serialize(Merged()).ReplaceLineEndings("\n");
        var path = RepositoryFile(DocsSchemaPath);
        if (Environment.GetEnvironmentVariable("MESHKIT_UPDATE_DOCS") == "1")
        {
            File.WriteAllText(path, expected);
        }

        var actual = File.Exists(path) ? File.ReadAllText(path).ReplaceLineEndings("\n") : string.Empty;
        Assert.True(expected == actual, $"{DocsSchemaPath} is not {MeshSchemaPath} and {ConsulSchemaPath} merged; run the tests with MESHKIT_UPDATE_DOCS=1 to rewrite it.");
    }

    [Fact]
    public void The_configuration_reference_names_every_setting_of_the_schema_with_its_default()
    {
        var schema = Merged();
        var docs = File.ReadAllLines(RepositoryFile("docs/configuration.md")).Where(l => l.StartsWith("| `Mesh:", StringComparison.Ordinal)).ToList();
        var problems = new List<string>();
        foreach (var (path, node) in Scalars(schema["properties"]!["Mesh"]!, "Mesh", schema))
        {
            if (path.StartsWith("Mesh:Policy", StringComparison.Ordinal) || path.StartsWith("Mesh:Authorization", StringComparison.Ordinal))
            {
                continue;
            }

            // A row names the key in full, or, in a row of several keys of its section (`...:RetryBaseDelay` / `RetryMaxDelay`),
            // by its last part. The docs write a list item <i> and a destination <service>.
            var key = path.Replace("<n>", "<i>", StringComparison.Ordinal).Replace("Static:<key>", "Static:<service>", StringComparison.Ordinal);
            var parts = key.Split(':');
            var last = parts[^1];
            var section = string.Join(':', parts.Take(Math.Min(3, parts.Length - 1)));
            if (!docs.Any(r => r.Contains($"`{key}`", StringComparison.Ordinal))
                && !docs.Any(r => r.StartsWith($"| `{section}", StringComparison.Ordinal) && (r.Contains($":{last}`", StringComparison.Ordinal) || r.Contains($"`{last}`", StringComparison.Ordinal))))
            {
                problems.Add($"{path}: in the schema, not in the tables of docs/configuration.md.");
                continue;
            }

            // A row of one key with a default in code font states the schema's default.
            var row = docs.FirstOrDefault(r => r.StartsWith($"| `{key}` | ", StringComparison.Ordinal));
            var stated = row is null ? null : DocsDefault().Match(row) is { Success: true } m ? m.Groups[1].Value : null;
            var expected = DefaultText(node["default"]);
            if (stated is not null && !stated.Contains('<', StringComparison.Ordinal) && !SameDefault(stated, expected))
            {
                problems.Add($"{path}: default is '{stated}' in docs/configuration.md, '{expected ?? "(none)"}' in the schema.");
            }
            else if (row is not null && stated is null && expected is not null && !row.Contains(expected, StringComparison.Ordinal))
            {
                problems.Add($"{path}: docs/configuration.md states no default; the schema's is '{expected}'.");
            }
        }

        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    private static bool SameDefault(string docs, string? schema) =>
        schema is not null && (docs == schema
            || (TimeSpan.TryParse(docs, CultureInfo.InvariantCulture, out var a) && TimeSpan.TryParse(schema, CultureInfo.InvariantCulture, out var b) && a == b)
            || (double.TryParse(docs, CultureInfo.InvariantCulture, out var x) && double.TryParse(schema, CultureInfo.InvariantCulture, out var y) && x == y));

    [Theory]
    [InlineData("src/MeshKit/MeshKit.csproj")]
    [InlineData("src/MeshKit.Discovery.Consul/MeshKit.Discovery.Consul.csproj")]
    public void The_package_ships_its_schema_as_a_JsonSchemaSegment_the_way_Aspire_integrations_do(string project)
    {
        // ConfigurationSchema.json at the package root, and buildTransitive/<tfm>/<PackageId>.targets adding it as a
        // JsonSchemaSegment for appsettings*.json (docs/configuration.md, "Editor support").
        var items = XDocument.Load(RepositoryFile(project)).Descendants("None").ToList();
        Assert.Contains(items, i => (string?)i.Attribute("Update") == "ConfigurationSchema.json" && (string?)i.Attribute("Pack") == "true"
            && (string?)i.Attribute("PackagePath") == "ConfigurationSchema.json");
        var targets = Assert.Single(items, i => (string?)i.Attribute("Include") == @"..\ConfigurationSchema.targets");
        Assert.Equal(@"buildTransitive\$(TargetFramework)\$(PackageId).targets", (string?)targets.Attribute("PackagePath"));
        Assert.True(File.Exists(Path.Combine(Path.GetDirectoryName(RepositoryFile(project))!, "ConfigurationSchema.json")), $"{project} has no ConfigurationSchema.json beside it.");

        var segment = Assert.Single(XDocument.Load(RepositoryFile("src/ConfigurationSchema.targets")).Descendants("JsonSchemaSegment"));
        Assert.Equal(@"$(MSBuildThisFileDirectory)..\..\ConfigurationSchema.json", (string?)segment.Attribute("Include"));
        Assert.Matches(new Regex((string)segment.Attribute("FilePathPattern")!), "appsettings.json");
        Assert.Matches(new Regex((string)segment.Attribute("FilePathPattern")!), "appsettings.Development.json");
    }

    private delegate IReadOnlyList<string> Probe(string path, object value);

    /// <summary>The docs' copy: both segments merged as an editor merges them, with the header an appsettings "$schema" needs.</summary>
    private static JsonObject Merged()
    {
        var merged = new JsonObject
        {
            ["$schema"] = "http://json-schema.org/draft-07/schema#",
            ["$id"] = "https://meshkit.dev/schema/mesh.schema.json",
            ["title"] = "MeshKit settings (appsettings.json)",
            ["description"] = $"The Mesh section: every setting MeshKit and MeshKit.Discovery.Consul read. Generated from {MeshSchemaPath} and {ConsulSchemaPath}, the schemas the packages ship (docs/configuration.md, \"Editor support\"); do not edit.",
        };
        MergeInto(merged, Load(MeshSchemaPath), string.Empty);
        MergeInto(merged, Load(ConsulSchemaPath), string.Empty);
        return merged;
    }

    private static void MergeInto(JsonObject target, JsonObject source, string pointer)
    {
        foreach (var (name, value) in source)
        {
            if (target[name] is JsonObject existing && value is JsonObject incoming)
            {
                MergeInto(existing, incoming, $"{pointer}/{name}");
            }
            else if (target.ContainsKey(name) && !JsonNode.DeepEquals(target[name], value))
            {
                throw new InvalidOperationException($"The segments disagree at {pointer}/{name}.");
            }
            else if (!target.ContainsKey(name))
            {
                target[name] = value?.DeepClone();
            }
        }
    }

    private static string Serialize(JsonNode node) =>
        node.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n";

    /// <summary>Compares one section with the options bound to it: the same keys, types and defaults.</summary>
    private static void CompareSection(object[] options, JsonNode? node, string path, JsonObject root, string[] unbound, List<string> problems)
    {
        node = Resolve(node, root);
        if (node is null)
        {
            problems.Add($"{path}: bound from configuration ({string.Join(", ", options.Select(o => o.GetType().Name))}), not in the schema.");
            return;
        }

        if (path != "Mesh")
        {
            Expect(path, "type", "object", (string?)node["type"], problems);
        }

        var properties = node["properties"]?.AsObject() ?? [];
        var bound = options.SelectMany(o => Bound(o.GetType()).Select(p => (Owner: o, Property: p))).ToList();
        foreach (var (owner, property) in bound)
        {
            var key = $"{path}:{property.Name}";
            if (properties[property.Name] is { } child)
            {
                CompareValue(property.PropertyType, property.GetValue(owner), child, key, root, problems);
            }
            else
            {
                problems.Add($"{key}: bound from configuration ({owner.GetType().Name}.{property.Name}), not in the schema.");
            }
        }

        foreach (var (name, _) in properties)
        {
            if (!bound.Any(b => b.Property.Name == name) && !unbound.Contains(name))
            {
                problems.Add($"{path}:{name}: in the schema, not bound from configuration (no property {name} in {string.Join(" or ", options.Select(o => o.GetType().Name))}).");
            }
        }
    }

    private static void CompareValue(Type type, object? value, JsonNode node, string path, JsonObject root, List<string> problems)
    {
        node = Resolve(node, root)!;
        var t = Nullable.GetUnderlyingType(type) ?? type;
        var schemaType = (string?)node["type"];
        var schemaDefault = node["default"];
        if (t == typeof(string) || t == typeof(Uri))
        {
            Expect(path, "type", "string", schemaType, problems);
            CompareDefault(path, value?.ToString(), schemaDefault, problems);
        }
        else if (t == typeof(int) || t == typeof(long))
        {
            Expect(path, "type", "integer", schemaType, problems);
            CompareDefault(path, value is null ? null : Convert.ToString(value, CultureInfo.InvariantCulture), schemaDefault, problems);
        }
        else if (t == typeof(double))
        {
            Expect(path, "type", "number", schemaType, problems);
            CompareDefault(path, value is null ? null : ((double)value).ToString(CultureInfo.InvariantCulture), schemaDefault, problems);
        }
        else if (t == typeof(bool))
        {
            Expect(path, "type", "boolean", schemaType, problems);
            CompareDefault(path, value is null ? null : (bool)value ? "true" : "false", schemaDefault, problems);
        }
        else if (t == typeof(TimeSpan))
        {
            Expect(path, "type", "string", schemaType, problems);
            Expect(path, "pattern", DurationPattern, (string?)node["pattern"], problems);
            var text = (string?)schemaDefault;
            var same = value is null ? text is null : text is not null && TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var parsed) && parsed == (TimeSpan)value;
            if (!same && !DefaultsLeftOut.ContainsKey(path))
            {
                problems.Add($"{path}: default is '{(value is null ? "(none)" : ((TimeSpan)value).ToString("c", CultureInfo.InvariantCulture))}' in the options, '{text ?? "(none)"}' in the schema.");
            }
        }
        else if (t == typeof(Version))
        {
            Expect(path, "type", "string", schemaType, problems);
            CompareDefault(path, value?.ToString(), schemaDefault, problems);
        }
        else if (t.IsEnum)
        {
            Expect(path, "type", "string", schemaType, problems);
            var choices = (node["enum"]?.AsArray() ?? []).Select(c => (string)c!).Order(StringComparer.Ordinal);
            Expect(path, "enum", string.Join(", ", Enum.GetNames(t).Order(StringComparer.Ordinal)), string.Join(", ", choices), problems);
            CompareDefault(path, value?.ToString(), schemaDefault, problems);
        }
        else if (t.IsGenericType && t.GetGenericTypeDefinition() is var generic && (generic == typeof(Dictionary<,>) || generic == typeof(IDictionary<,>)))
        {
            Expect(path, "type", "object", schemaType, problems);
            if (node["additionalProperties"] is JsonObject values)
            {
                CompareValue(t.GetGenericArguments()[1], null, values, $"{path}:<key>", root, problems);
            }
            else
            {
                problems.Add($"{path}: keys of the user's choice; the schema needs \"additionalProperties\" with a schema for each value.");
            }
        }
        else if (t != typeof(string) && typeof(IEnumerable).IsAssignableFrom(t))
        {
            Expect(path, "type", "array", schemaType, problems);
            var element = t.IsArray ? t.GetElementType()! : t.GetGenericArguments()[0];
            if (node["items"] is { } items)
            {
                CompareValue(element, null, items, $"{path}:<n>", root, problems);
            }
            else
            {
                problems.Add($"{path}: a list; the schema needs \"items\".");
            }

            if (value is IEnumerable list && list.Cast<object>().Any())
            {
                problems.Add($"{path}: the options start with a non-empty list; say so in the schema's default and teach this test to compare it.");
            }
        }
        else if (t.IsClass)
        {
            CompareSection([value ?? Activator.CreateInstance(t)!], node, path, root, [], problems);
        }
        else
        {
            problems.Add($"{path}: {t.Name} is a type this test does not know; teach it how configuration writes it.");
        }
    }

    private static void CompareDefault(string path, string? options, JsonNode? schema, List<string> problems)
    {
        if (!DefaultsLeftOut.ContainsKey(path))
        {
            Expect(path, "default", ReaderDefaults.TryGetValue(path, out var reader) ? reader : options, DefaultText(schema), problems);
        }
    }

    private static string? DefaultText(JsonNode? node) => node switch
    {
        null => null,
        JsonValue value when value.GetValueKind() == JsonValueKind.Number => value.GetValue<double>().ToString(CultureInfo.InvariantCulture),
        JsonValue value when value.GetValueKind() is JsonValueKind.True or JsonValueKind.False => value.GetValue<bool>() ? "true" : "false",
        var other => other.ToString(),
    };

    /// <summary>The properties configuration binds: public, readable, and settable or a collection filled in place.</summary>
    private static IEnumerable<PropertyInfo> Bound(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.GetIndexParameters().Length == 0 && p.GetMethod is { IsPublic: true }
                && (p.SetMethod is { IsPublic: true } || (p.PropertyType != typeof(string) && typeof(IEnumerable).IsAssignableFrom(p.PropertyType))));

    private static void ExpectKeys(JsonNode? node, string path, string[] keys, List<string> problems)
    {
        var names = (node?["properties"]?.AsObject() ?? []).Select(p => p.Key).Order(StringComparer.Ordinal);
        Expect(path, "keys", string.Join(", ", keys.Order(StringComparer.Ordinal)), string.Join(", ", names), problems);
    }

    private static void Expect(string path, string what, string? code, string? schema, List<string> problems)
    {
        if (!string.Equals(code ?? string.Empty, schema ?? string.Empty, StringComparison.Ordinal))
        {
            problems.Add($"{path}: {what} is '{code ?? "(none)"}' in the code, '{schema ?? "(none)"}' in the schema.");
        }
    }

    /// <summary>Every setting below a section that holds one value, with its full key (list items and map keys as placeholders).</summary>
    private static IEnumerable<(string Path, JsonObject Node)> Scalars(JsonNode node, string path, JsonObject root)
    {
        node = Resolve(node, root)!;
        if (node["properties"] is JsonObject properties)
        {
            foreach (var (name, child) in properties)
            {
                foreach (var entry in Scalars(child!, $"{path}:{name}", root))
                {
                    yield return entry;
                }
            }
        }
        else if (node["items"] is { } items)
        {
            foreach (var entry in Scalars(items, $"{path}:<n>", root))
            {
                yield return entry;
            }
        }
        else if (node["additionalProperties"] is JsonObject values)
        {
            foreach (var entry in Scalars(values, $"{path}:<key>", root))
            {
                yield return entry;
            }
        }
        else
        {
            yield return (path, node.AsObject());
        }
    }

    /// <summary>
    /// Asks the validator at each bound the schema states and just past it, and at the far ends where it states none: a value
    /// the schema allows must draw no error about the key, and one it refuses an error naming the key.
    /// </summary>
    private static int CheckRange(string path, JsonObject node, Probe probe, List<string> problems)
    {
        var type = (string?)node["type"];
        var pattern = (string?)node["pattern"];
        var count = 0;
        void Check(object value, bool valid, string why)
        {
            count++;
            IReadOnlyList<string> errors;
            try
            {
                errors = probe(path, value);
            }
            catch (Exception ex) when (ex is InvalidOperationException or ArgumentException)
            {
                problems.Add($"{path}: {Show(value)} cannot be given to the options the schema says hold it: {ex.Message}");
                return;
            }

            var key = new Regex(Regex.Escape(path.Replace("<n>", "0", StringComparison.Ordinal).Replace("<key>", "orders", StringComparison.Ordinal)) + "(?![A-Za-z0-9:])");
            if (valid && errors.FirstOrDefault(e => key.Match(e) is { Success: true, Index: 0 }) is { } error)
            {
                problems.Add($"{path}: {Show(value)} is {why} in the schema, but the validator refuses it: {error}");
            }
            else if (!valid && !errors.Any(e => key.IsMatch(e)))
            {
                problems.Add($"{path}: {Show(value)} is {why} in the schema, but the validator accepts it.");
            }
        }

        if (type is "integer" or "number")
        {
            var step = type == "integer" ? 1d : 1e-9;
            var (min, max) = (Number(node["minimum"]), Number(node["maximum"]));
            var (xmin, xmax) = (Number(node["exclusiveMinimum"]), Number(node["exclusiveMaximum"]));
            object Value(double v) => type == "integer" ? (object)(int)v : v;
            if (min is { } a)
            {
                Check(Value(a), true, "the minimum");
                Check(Value(a - step), false, "below the minimum");
            }

            if (max is { } b)
            {
                Check(Value(b), true, "the maximum");
                Check(Value(b + step), false, "above the maximum");
            }

            if (xmin is { } c)
            {
                Check(Value(c), false, "the exclusive minimum");
                Check(Value(c + step), true, "just above the exclusive minimum");
            }

            if (xmax is { } d)
            {
                Check(Value(d), false, "the exclusive maximum");
                Check(Value(d - step), true, "just below the exclusive maximum");
            }

            if (min is null && xmin is null)
            {
                Check(Value(type == "integer" ? int.MinValue : -1e9), true, "allowed (no minimum)");
            }

            if (max is null && xmax is null)
            {
                Check(Value(type == "integer" ? int.MaxValue : 1e9), true, "allowed (no maximum)");
            }
        }
        else if (pattern == DurationPattern)
        {
            var tick = TimeSpan.FromTicks(1);
            var range = DurationRange().Match((string?)node["description"] ?? string.Empty);
            TimeSpan BoundOf(Group g) => g.Value.Contains(':', StringComparison.Ordinal)
                ? TimeSpan.Parse(g.Value, CultureInfo.InvariantCulture)
                : (TimeSpan)Sibling(path, g.Value);
            if (!range.Success)
            {
                Check(TimeSpan.Zero, true, "allowed (no range)");
                Check(TimeSpan.FromDays(3650), true, "allowed (no range)");
                return count;
            }

            if (range.Groups["never"].Success)
            {
                Check(TimeSpan.Zero, true, "allowed");
            }

            if (range.Groups["min"].Success)
            {
                Check(BoundOf(range.Groups["min"]), true, "the minimum");
                Check(BoundOf(range.Groups["min"]) - tick, false, "below the minimum");
            }
            else if (range.Groups["more"].Success)
            {
                Check(BoundOf(range.Groups["more"]), false, "the exclusive minimum");
                Check(BoundOf(range.Groups["more"]) + tick, true, "just above the exclusive minimum");
            }
            else
            {
                Check(TimeSpan.Zero, true, "allowed (no minimum)");
            }

            if (range.Groups["max"].Success)
            {
                Check(BoundOf(range.Groups["max"]), true, "the maximum");
                Check(BoundOf(range.Groups["max"]) + tick, false, "above the maximum");
            }
            else
            {
                Check(TimeSpan.FromDays(3650), true, "allowed (no maximum)");
            }
        }

        return count;
    }

    private static string Show(object value) => value switch
    {
        TimeSpan t => t.ToString("c", CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture)!,
    };

    private static double? Number(JsonNode? node) => node?.GetValue<double>();

    /// <summary>The default of a sibling setting (a bound such as "at least RetryBaseDelay").</summary>
    private static object Sibling(string path, string name)
    {
        var sibling = path[..(path.LastIndexOf(':') + 1)] + name;
        return path.StartsWith(ConsulOptions.SectionPath, StringComparison.Ordinal)
            ? Get(ConsulBase(sibling), sibling[(ConsulOptions.SectionPath.Length + 1)..])
            : Get(MeshBase(), sibling["Mesh:".Length..]);
    }

    private static IReadOnlyList<string> ProbeMesh(string path, object value)
    {
        var options = MeshBase();
        Set(options, path["Mesh:".Length..], value);
        var result = new MeshOptionsValidator().Validate(null, options);
        return result.Failures?.ToList() ?? [];
    }

    private static IReadOnlyList<string> ProbeConsul(string path, object value)
    {
        var key = path[(ConsulOptions.SectionPath.Length + 1)..];
        var options = ConsulBase(path);
        Set(options, key, value);
        var result = options switch
        {
            ConsulOptions consul => new ConsulOptionsValidator().Validate(null, consul),
            ConsulRegistrationOptions registration => RegistrationValidator().Validate(null, registration),
            _ => throw new InvalidOperationException(path),
        };
        return result.Failures?.ToList() ?? [];
    }

    private static IReadOnlyList<string> ProbeStatic(string path, object value)
    {
        var property = path[(path.LastIndexOf(':') + 1)..];
        var settings = new Dictionary<string, string?>
        {
            [$"{StaticDiscovery.SectionPath}:orders:0:Address"] = "10.0.0.1:443",
            [$"{StaticDiscovery.SectionPath}:orders:0:{property}"] = Show(value),
        };
        var errors = new List<string>();
        StaticDiscovery.Read(new ConfigurationBuilder().AddInMemoryCollection(settings).Build(), "orders", errors);
        return errors;
    }

    private static IValidateOptions<ConsulRegistrationOptions> RegistrationValidator() =>
        (IValidateOptions<ConsulRegistrationOptions>)Activator.CreateInstance(typeof(ConsulRegistrationOptions).Assembly.GetType("MeshKit.Discovery.ConsulRegistrationOptionsValidator", throwOnError: true)!)!;

    /// <summary>Valid options that differ from the defaults only where a probe needs room: no renewal jitter, so the fraction can reach its bounds.</summary>
    private static MeshOptions MeshBase()
    {
        var options = new MeshOptions { TrustDomain = "mesh.local" };
        options.Service.Name = "orders";
        options.ControlPlane.Address = new Uri("https://127.0.0.1:7443");
        options.ControlPlane.TrustBundlePath = "trust-bundle.pem";
        options.Identity.RenewalJitter = 0;
        Assert.True(new MeshOptionsValidator().Validate(null, options).Succeeded);
        return options;
    }

    private static object ConsulBase(string path)
    {
        var key = path[(ConsulOptions.SectionPath.Length + 1)..].Split(':')[0];
        return typeof(ConsulOptions).GetProperty(key) is not null ? new ConsulOptions() : new ConsulRegistrationOptions();
    }

    private static void Set(object options, string key, object value)
    {
        var parts = key.Split(':');
        var target = parts[..^1].Aggregate(options, (o, p) => o.GetType().GetProperty(p)!.GetValue(o)!);
        var property = target.GetType().GetProperty(parts[^1]) ?? throw new InvalidOperationException($"{key} is not a property of {target.GetType().Name}.");
        property.SetValue(target, value);
    }

    private static object Get(object options, string key) =>
        key.Split(':').Aggregate(options, (o, p) => o.GetType().GetProperty(p)?.GetValue(o) ?? throw new InvalidOperationException($"{key} is not a property of {options.GetType().Name}."));

    /// <summary>Finds the schema of a configuration key (<c>Mesh:Policy:Destinations</c>), through references, lists and maps.</summary>
    private static JsonNode? Find(JsonObject root, string key)
    {
        JsonNode? node = root;
        foreach (var part in key.Split(':'))
        {
            node = Resolve(node, root);
            if (node is null)
            {
                return null;
            }

            node = node["properties"]?[part]
                ?? (part is "<n>" || int.TryParse(part, out _) ? node["items"] : null)
                ?? (node["additionalProperties"] is JsonObject values ? values : null);
        }

        return Resolve(node, root);
    }

    private static JsonNode? Resolve(JsonNode? node, JsonObject root)
    {
        while (node?["$ref"] is { } reference)
        {
            var pointer = ((string)reference!).TrimStart('#').Split('/', StringSplitOptions.RemoveEmptyEntries);
            node = pointer.Aggregate((JsonNode?)root, (current, segment) => current?[segment]);
        }

        return node;
    }

    private static JsonObject Load(string path) => JsonNode.Parse(File.ReadAllText(RepositoryFile(path)))!.AsObject();

    private static string Describe(EvaluationResults result) =>
        string.Join("; ", (result.Details ?? []).Where(d => d.Errors is { Count: > 0 }).SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Value}")));

    /// <summary>The docs' JSON examples that hold a whole appsettings document (a fragment that does not parse is skipped).</summary>
    private static IEnumerable<(string Name, string Json)> DocsExamples()
    {
        foreach (var file in Directory.GetFiles(RepositoryFile("docs"), "*.md"))
        {
            var text = File.ReadAllText(file);
            foreach (Match block in JsonBlock().Matches(text))
            {
                var json = block.Groups[1].Value.Trim();
                if (Parse(json) is { } document && document.ContainsKey("Mesh"))
                {
                    var line = text[..block.Index].Count(c => c == '\n') + 1;
                    yield return ($"{Path.GetRelativePath(RepositoryFile(string.Empty), file)}:{line}", json);
                }
            }
        }
    }

    private static JsonObject? Parse(string json)
    {
        try
        {
            return JsonNode.Parse(json) as JsonObject;
        }
        catch (JsonException)
        {
            // A fragment (one member, or with comments) is not a document.
            return null;
        }
    }

    private static string RepositoryFile(string relative)
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "MeshKit.sln")))
        {
            directory = directory.Parent;
        }

        return Path.Combine(directory?.FullName ?? throw new InvalidOperationException("MeshKit.sln not found above the test's folder."), relative);
    }

    [GeneratedRegex(@"""(Mesh(?::[A-Z][A-Za-z]*)+)")]
    private static partial Regex MeshKeyLiteral();

    [GeneratedRegex(@"const string (\w+) = ""(Mesh(?::[A-Za-z]+)+)"";")]
    private static partial Regex KeyConstant();

    [GeneratedRegex(@"\[""(Mesh(?::[A-Za-z]+)+)""\]\s*\?\?\s*""([^""]*)""")]
    private static partial Regex IndexerDefault();

    [GeneratedRegex(@"GetValue\((\w+),\s*defaultValue:\s*(\w+)\)")]
    private static partial Regex GetValueDefault();

    // "Range: from A to B." | "Range: more than A, at most B." | "Range: at least A." | "Range: 00:00:00 (never), or from A to B."
    [GeneratedRegex(@"Range: (?:(?<never>00:00:00) \(never\), or )?(?:from (?<min>[\w:.]+) to (?<max>[\w:.]+?)|more than (?<more>[\w:.]+?)(?:, at most (?<max>[\w:.]+?))?|at least (?<min>[\w:.]+?))\.(?:\s|$)")]
    private static partial Regex DurationRange();

    [GeneratedRegex(@"^\| `[^`]+` \| `([^`]+)` \|")]
    private static partial Regex DocsDefault();

    [GeneratedRegex("```json\\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex JsonBlock();
}
