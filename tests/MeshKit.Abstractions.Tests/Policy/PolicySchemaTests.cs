using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Json.Schema;
using MeshKit.Policy;

namespace MeshKit.Abstractions.Tests.Policy;

/// <summary>
/// The JSON schemas editors use held against <see cref="PolicyModel"/>: the policy part of the settings schema the MeshKit
/// package ships (<c>src/MeshKit/ConfigurationSchema.json</c>, whose merged copy is <c>docs/schema/mesh.schema.json</c>) and
/// <c>mesh-central-policy.schema.json</c> for central documents have the same keys at the same paths, with the same types,
/// bounds, choices, defaults and required keys; and the repository's real policy documents are valid for both the schemas and
/// the reader. The rest of the <c>Mesh</c> section is held against the options by SettingsSchemaTests in MeshKit.Tests.
/// </summary>
[Trait("Area", "Policy")]
public sealed partial class PolicySchemaTests
{
    private const string DurationPattern = @"^(\d+\.)?\d{1,2}:\d{2}:\d{2}(\.\d+)?$";

    /// <summary>The settings schema the MeshKit package ships: the source of the policy definitions.</summary>
    private const string SettingsSchema = "src/MeshKit/ConfigurationSchema.json";

    [Fact]
    public void The_schema_describes_exactly_the_keys_of_the_model_with_their_types_bounds_and_defaults()
    {
        var schema = JsonNode.Parse(File.ReadAllText(PolicyModelWalk.RepositoryFile(SettingsSchema)))!.AsObject();
        var problems = new List<string>();
        Compare(PolicyModel.Mesh, schema["properties"]!["Mesh"]!, "Mesh", schema, problems);
        Assert.True(problems.Count == 0, $"{SettingsSchema} and PolicyModel differ:" + Environment.NewLine + string.Join(Environment.NewLine, problems));
    }

    [Fact]
    public void The_samples_and_the_docs_examples_are_valid_for_the_schemas_and_the_reader()
    {
        var (appsettings, central) = Schemas();
        var documents = Directory.GetFiles(PolicyModelWalk.RepositoryFile("samples"), "appsettings*.json", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal) && !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Select(f => (Name: Path.GetRelativePath(PolicyModelWalk.RepositoryFile(string.Empty), f), Json: File.ReadAllText(f)))
            .Where(d => d.Json.Contains("\"Policy\"", StringComparison.Ordinal) || d.Json.Contains("\"Authorization\"", StringComparison.Ordinal))
            .Concat(DocsExamples("docs/traffic-policy.md", "docs/authorization.md", "docs/live-policy.md"))
            .ToList();

        var centralDocuments = 0;
        var problems = new List<string>();
        foreach (var (name, json) in documents)
        {
            var isCentral = !json.Contains("\"Mesh\"", StringComparison.Ordinal);
            centralDocuments += isCentral ? 1 : 0;
            var result = (isCentral ? central : appsettings).Evaluate(JsonDocument.Parse(json).RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });
            if (!result.IsValid)
            {
                problems.Add($"{name}: not valid for the {(isCentral ? "central" : "appsettings")} schema: {Describe(result)}");
            }

            var read = PolicyReader.ReadJson(json);
            if (!read.IsValid)
            {
                problems.Add($"{name}: refused by the reader: {string.Join("; ", read.Errors)}");
            }
        }

        Assert.True(documents.Count >= 6, $"only {documents.Count} documents were found");
        Assert.True(centralDocuments >= 1, "no central document was found in the docs");
        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    [Theory]
    [InlineData("""{ "Mesh": { "Policy": { "Defaults": { "Retyr": { "MaxRetries": 1 } } } } }""")]
    [InlineData("""{ "Mesh": { "Policy": { "Defaults": { "Retry": { "MaxRetries": 11 } } } } }""")]
    [InlineData("""{ "Mesh": { "Policy": { "Destinations": { "orders": { "LoadBalancer": "Random" } } } } }""")]
    [InlineData("""{ "Mesh": { "Policy": { "Destinations": { "orders": { "Routes": [ { "Mirror": { "Percent": 5 } } ] } } } } }""")]
    [InlineData("""{ "Mesh": { "Authorization": { "Rules": [ { "RateLimit": { "Burst": 5 } } ] } } }""")]
    [InlineData("""{ "Mesh": { "Authorization": { "Rules": [ { "From": { "Services": [ "frontend" ], "Callers": true } } ] } } }""")]
    [InlineData("""{ "Policy": { "Defaults": { "Concurrency": { "MaxRequests": 0 } } } }""")]
    [InlineData("""{ "Policy": { }, "Authorisation": { } }""")]
    public void The_schemas_refuse_what_the_reader_refuses(string json)
    {
        var (appsettings, central) = Schemas();
        var schema = json.Contains("\"Mesh\"", StringComparison.Ordinal) ? appsettings : central;
        Assert.False(schema.Evaluate(JsonDocument.Parse(json).RootElement).IsValid, "the schema accepts it");
        Assert.False(PolicyReader.ReadJson(json).IsValid, "the reader accepts it");
    }

    private static (JsonSchema Appsettings, JsonSchema Central) Schemas()
    {
        // One registry for both, so the central schema's references into the appsettings schema resolve without a network.
        var options = new BuildOptions { SchemaRegistry = new SchemaRegistry() };
        var appsettings = JsonSchema.FromText(File.ReadAllText(PolicyModelWalk.RepositoryFile("docs/schema/mesh.schema.json")), options);
        var central = JsonSchema.FromText(File.ReadAllText(PolicyModelWalk.RepositoryFile("docs/schema/mesh-central-policy.schema.json")), options);
        return (appsettings, central);
    }

    private static string Describe(EvaluationResults result) =>
        string.Join("; ", (result.Details ?? []).Where(d => d.Errors is { Count: > 0 }).SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Value}")));

    private static IEnumerable<(string Name, string Json)> DocsExamples(params string[] files)
    {
        foreach (var file in files)
        {
            var text = File.ReadAllText(PolicyModelWalk.RepositoryFile(file));
            foreach (Match block in JsonBlock().Matches(text))
            {
                var json = block.Groups[1].Value.Trim();
                if (!json.Contains("\"Policy\"", StringComparison.Ordinal) && !json.Contains("\"Authorization\"", StringComparison.Ordinal))
                {
                    continue;
                }

                // authorization.md shows the "Mesh" member alone.
                var line = text[..block.Index].Count(c => c == '\n') + 1;
                yield return ($"{file}:{line}", json.StartsWith('"') ? "{" + json + "}" : json);
            }
        }
    }

    private static void Compare(PolicyKey key, JsonNode node, string path, JsonObject root, List<string> problems)
    {
        node = Resolve(node, root);
        switch (key.Kind)
        {
            case PolicyValueKind.Section:
                if (key.Shorthand)
                {
                    var branches = node["oneOf"]?.AsArray().Select(b => Resolve(b!, root)).ToList() ?? [];
                    if (branches.Count != 2 || !branches.Any(b => Type(b) == "string") || branches.FirstOrDefault(b => Type(b) == "object") is not { } objectBranch)
                    {
                        problems.Add($"{path}: the model allows a string or a section; the schema needs oneOf a string and an object.");
                        return;
                    }

                    node = objectBranch;
                }

                if (path != "Mesh")
                {
                    Expect(path, "type", "object", Type(node), problems);
                    if (node["additionalProperties"]?.GetValueKind() != JsonValueKind.False)
                    {
                        problems.Add($"{path}: the reader refuses unknown keys; the schema needs \"additionalProperties\": false.");
                    }
                }

                var properties = node["properties"]?.AsObject() ?? [];
                foreach (var child in key.Keys)
                {
                    if (properties[child.Name] is { } childNode)
                    {
                        Compare(child, childNode, $"{path}:{child.Name}", root, problems);
                    }
                    else
                    {
                        problems.Add($"{path}:{child.Name}: in the model, not in the schema.");
                    }
                }

                foreach (var (name, _) in properties)
                {
                    // The Mesh section also holds the options' keys (Service, Endpoint, ...): SettingsSchemaTests holds those.
                    if (path != "Mesh" && !key.Names.Contains(name, StringComparer.Ordinal))
                    {
                        problems.Add($"{path}:{name}: in the schema, not in the model.");
                    }
                }

                var required = (node["required"]?.AsArray() ?? []).Select(r => (string)r!).Order(StringComparer.Ordinal);
                Expect(path, "required", string.Join(", ", key.Keys.Where(k => k.Required).Select(k => k.Name).Order(StringComparer.Ordinal)), string.Join(", ", required), problems);
                return;
            case PolicyValueKind.List:
                Expect(path, "type", "array", Type(node), problems);
                if (node["items"] is { } items)
                {
                    Compare(key.Item!, items, $"{path}:<n>", root, problems);
                }
                else
                {
                    problems.Add($"{path}: a list; the schema needs \"items\".");
                }

                break;
            case PolicyValueKind.Map:
                Expect(path, "type", "object", Type(node), problems);
                if (node["additionalProperties"] is JsonObject values)
                {
                    Compare(key.Item!, values, $"{path}:{key.Item!.Name}", root, problems);
                }
                else
                {
                    problems.Add($"{path}: names of the user's choice; the schema needs \"additionalProperties\" with a schema for each value.");
                }

                break;
            case PolicyValueKind.Duration:
                Expect(path, "type", "string", Type(node), problems);
                Expect(path, "pattern", DurationPattern, (string?)node["pattern"], problems);
                break;
            case PolicyValueKind.Integer or PolicyValueKind.Number:
                Expect(path, "type", key.Kind == PolicyValueKind.Integer ? "integer" : "number", Type(node), problems);
                Expect(path, "minimum", Format(key.Minimum), Number(node["minimum"]), problems);
                Expect(path, "maximum", Format(key.Maximum), Number(node["maximum"]), problems);
                break;
            case PolicyValueKind.Boolean:
                Expect(path, "type", "boolean", Type(node), problems);
                break;
            case PolicyValueKind.String:
                Expect(path, "type", "string", Type(node), problems);
                break;
            case PolicyValueKind.Choice:
                var choices = (node["enum"]?.AsArray() ?? []).Select(c => (string)c!).Order(StringComparer.Ordinal);
                Expect(path, "enum", string.Join(", ", key.Choices.Order(StringComparer.Ordinal)), string.Join(", ", choices), problems);
                break;
        }

        var schemaDefault = node["default"] switch
        {
            null => null,
            JsonValue value when value.GetValueKind() == JsonValueKind.Number => Format(value.GetValue<double>()),
            JsonValue value when value.GetValueKind() is JsonValueKind.True or JsonValueKind.False => value.GetValue<bool>() ? "true" : "false",
            var other => other.ToString(),
        };
        var modelDefault = key.Default is { } d && key.Kind is PolicyValueKind.Integer or PolicyValueKind.Number ? Format(double.Parse(d, CultureInfo.InvariantCulture)) : key.Default;
        Expect(path, "default", modelDefault, schemaDefault, problems);
    }

    private static JsonNode Resolve(JsonNode node, JsonObject root)
    {
        while (node["$ref"] is { } reference)
        {
            var pointer = ((string)reference!).TrimStart('#').Split('/', StringSplitOptions.RemoveEmptyEntries);
            node = pointer.Aggregate((JsonNode)root, (current, segment) => current[segment] ?? throw new InvalidOperationException($"{reference} does not resolve."));
        }

        return node;
    }

    private static string? Type(JsonNode node) => (string?)node["type"];

    private static string? Number(JsonNode? node) => node is null ? null : Format(node.GetValue<double>());

    private static string Format(double value) => value.ToString(CultureInfo.InvariantCulture);

    private static void Expect(string path, string what, string? model, string? schema, List<string> problems)
    {
        if (!string.Equals(model ?? string.Empty, schema ?? string.Empty, StringComparison.Ordinal))
        {
            problems.Add($"{path}: {what} is '{model ?? "(none)"}' in the model, '{schema ?? "(none)"}' in the schema.");
        }
    }

    [GeneratedRegex("```json\\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex JsonBlock();
}
