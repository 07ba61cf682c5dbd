using System.Globalization;
using System.Text;
using System.Text.Json;
using MeshKit.Policy;
using Microsoft.Extensions.Configuration;

namespace MeshKit.Tests.Security;

/// <summary>
/// The policy reader against random and malformed input, from a seeded generator (reproducible: a failure names its seed
/// and iteration). It must never throw; every error must name a key of the input; and a document it accepts must be what
/// the snapshot holds.
/// </summary>
[Trait("Area", "Security")]
public sealed class PolicyFuzzTests
{
    private static readonly string[] Keys =
    [
        "Policy", "Authorization", "Defaults", "Destinations", "orders", "inventory", "Orders!", "", "Routes", "Split", "v1", "v2",
        "Timeout", "AttemptTimeout", "Retry", "MaxRetries", "Budget", "Ratio", "Methods", "RetryOn", "Concurrency", "MaxRequests",
        "OutlierDetection", "ConsecutiveFailures", "MaxEjectionPercent", "LoadBalancer", "Match", "Path", "Prefix", "Exact", "Regex",
        "Headers", "x-user", "Mirror", "Subset", "Percent", "Fault", "Delay", "Abort", "Status", "Duration", "Rules", "From", "To",
        "Services", "Paths", "Action", "DefaultAction", "RateLimit", "PermitsPerSecond", "Burst", "Public", "SpiffeIds", "Unknown",
        "0", "1", "2", "99999999999", "-1", "a:b", "with space", "ünïcode",
    ];

    private static readonly string[] Values =
    [
        "00:00:01", "00:00:00", "soon", "-00:00:01", "99999999:00:00", "1", "0", "-5", "2147483648", "1e308", "NaN", "0.2", "ten",
        "true", "false", "All", "Idempotent", "Deny", "Allow", "PeakEwma", "Random", "/api", "api", "/api/*", "*", "(", "[a-z]+",
        "(a+)+$", "GET", "BREW", "frontend", "ns/frontend", "spiffe://mesh.local/ns/default/svc/x", "spiffe://x/../y", "", " ",
        "\u0000", "\ud800", new string('x', 5000),
    ];

    [Fact]
    public void Random_policy_shaped_documents_never_throw_and_every_error_names_a_key_of_the_document()
    {
        const int Seed = 20261128;
        var random = new Random(Seed);
        var checkedErrors = 0;
        var valid = 0;
        var stats = new Coverage();
        for (var i = 0; i < 1500; i++)
        {
            // Odd iterations: a policy-shaped document of real settings, a few of them wrong; even ones: anything.
            var json = i % 2 == 1 ? SchemaDocument(random) : RandomDocument(random, depth: 0);
            PolicyReadResult result;
            try
            {
                result = PolicyReader.ReadJson(json);
            }
            catch (Exception ex)
            {
                Assert.Fail($"Seed {Seed}, iteration {i}: the reader threw {ex.GetType().Name}: {ex.Message}\n{json}");
                return;
            }

            var context = $"Seed {Seed}, iteration {i}";
            if (result.IsValid)
            {
                valid++;
                Assert.Empty(result.Errors);
                AssertSnapshotReflects(DocumentOf(json), result.Snapshot!, $"{context}\n{json}", stats);
                continue;
            }

            checkedErrors += AssertErrorsNameKeysOf(json, result, context);
        }

        // The generator must exercise both sides, and valid documents that carry settings, or the properties say nothing.
        Assert.True(checkedErrors > 1000, $"only {checkedErrors} errors were checked");
        Assert.True(valid > 10, $"only {valid} documents were valid");
        Assert.True(stats.WithSettings > 100, $"only {stats.WithSettings} valid documents carried a setting");
        Assert.True(stats.WithAuthorization > 100, $"only {stats.WithAuthorization} valid documents turned authorization on");
    }

    [Fact]
    public void Arbitrary_and_truncated_text_never_throws()
    {
        const int Seed = 4242;
        var random = new Random(Seed);
        const string Valid = """
            { "Policy": { "Destinations": { "orders": { "Routes": [ { "Match": { "Path": { "Prefix": "/api" } }, "Split": { "v1": 90, "v2": 10 } } ] } } },
              "Authorization": { "Rules": [ { "From": { "Services": [ "frontend" ] }, "To": { "Paths": [ "/api/*" ] } } ] } }
            """;
        var stats = new Coverage();
        var original = PolicyReader.ReadJson(Valid);
        Assert.True(original.IsValid);
        AssertSnapshotReflects(DocumentOf(Valid), original.Snapshot!, Valid, stats);
        Assert.Equal(1, stats.WithAuthorization);

        var invalid = 0;
        var unparsable = 0;
        for (var i = 0; i < 1500; i++)
        {
            var text = (i % 3) switch
            {
                0 => Valid[..random.Next(Valid.Length)],
                1 => Mutate(Valid, random),
                _ => RandomText(random),
            };

            var context = $"Seed {Seed}, iteration {i}";
            var result = PolicyReader.ReadJson(text);
            if (result.IsValid)
            {
                Assert.Empty(result.Errors);
                AssertSnapshotReflects(DocumentOf(text), result.Snapshot!, $"{context}\n{text}", stats);
                continue;
            }

            invalid++;
            Assert.True(result.Errors.Count > 0, $"{context}: no snapshot and no error\n{text}");
            if (TryDocumentOf(text) is null)
            {
                // Not JSON: one error, for the document as a whole.
                unparsable++;
                var error = Assert.Single(result.Errors);
                Assert.Equal("(document)", error.Path);
                Assert.Contains("not valid JSON", error.Message, StringComparison.Ordinal);
            }
            else
            {
                AssertErrorsNameKeysOf(text, result, context);
            }
        }

        Assert.True(invalid > 500 && unparsable > 100 && invalid - unparsable > 20, $"{invalid} invalid documents, {unparsable} of them not JSON");
    }

    [Fact]
    public void Random_configuration_values_never_throw_when_read_from_appsettings_keys()
    {
        const int Seed = 777;
        var random = new Random(Seed);
        for (var i = 0; i < 1000; i++)
        {
            var data = new Dictionary<string, string?>();
            for (var k = 0; k < random.Next(1, 8); k++)
            {
                var path = "Mesh:" + string.Join(':', Enumerable.Range(0, random.Next(1, 7)).Select(_ => Keys[random.Next(Keys.Length)]).Where(s => s.Length > 0));
                data[path] = Values[random.Next(Values.Length)];
            }

            var mesh = new ConfigurationBuilder().AddInMemoryCollection(data).Build().GetSection("Mesh");
            var result = PolicyReader.Read(mesh);
            foreach (var error in result.Errors)
            {
                Assert.StartsWith("Mesh:", error.Path, StringComparison.Ordinal);
            }

            if (result.IsValid)
            {
                AssertSnapshotReflects(mesh, result.Snapshot!, $"Seed {Seed}, iteration {i}: {string.Join("; ", data)}", new Coverage());
            }
        }
    }

    private static string RandomDocument(Random random, int depth)
    {
        var builder = new StringBuilder();
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream))
        {
            WriteObject(writer, random, depth);
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void WriteObject(Utf8JsonWriter writer, Random random, int depth)
    {
        writer.WriteStartObject();
        var count = random.Next(0, depth == 0 ? 3 : 5);
        var used = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < count; i++)
        {
            var key = depth == 0 ? (random.Next(4) == 0 ? Keys[random.Next(Keys.Length)] : random.Next(2) == 0 ? "Policy" : "Authorization") : Keys[random.Next(Keys.Length)];
            if (!used.Add(key))
            {
                continue;
            }

            writer.WritePropertyName(key);
            WriteValue(writer, random, depth + 1);
        }

        writer.WriteEndObject();
    }

    private static void WriteValue(Utf8JsonWriter writer, Random random, int depth)
    {
        var choice = depth > 6 ? random.Next(3) : random.Next(6);
        switch (choice)
        {
            case 0:
                writer.WriteStringValue(Values[random.Next(Values.Length)]);
                break;
            case 1:
                writer.WriteNumberValue(random.Next(-10, 200));
                break;
            case 2:
                writer.WriteBooleanValue(random.Next(2) == 0);
                break;
            case 3:
                writer.WriteStartArray();
                for (var i = random.Next(0, 4); i > 0; i--)
                {
                    WriteValue(writer, random, depth + 1);
                }

                writer.WriteEndArray();
                break;
            default:
                WriteObject(writer, random, depth);
                break;
        }
    }

    private static string SchemaDocument(Random random)
    {
        // Mostly values the reader accepts, one in twelve that it must refuse.
        string Pick(string[] good, string[] bad) => random.Next(12) == 0 ? bad[random.Next(bad.Length)] : good[random.Next(good.Length)];
        bool Maybe() => random.Next(2) == 0;

        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream))
        {
            writer.WriteStartObject();
            var wrapped = random.Next(4) == 0;
            if (wrapped)
            {
                writer.WriteStartObject("Mesh");
            }

            void WriteTimeoutAndRetries()
            {
                if (Maybe())
                {
                    writer.WriteString("Timeout", Pick(["00:00:05", "00:00:30", "00:01:00"], ["soon", "-00:00:01", "25:00:00"]));
                }

                if (Maybe())
                {
                    writer.WriteStartObject("Retry");
                    writer.WriteString("MaxRetries", Pick(["0", "1", "3"], ["11", "-1", "many"]));
                    writer.WriteEndObject();
                }
            }

            if (random.Next(3) != 0)
            {
                writer.WriteStartObject("Policy");
                if (random.Next(3) == 0)
                {
                    writer.WriteString("SubsetHeader", Pick(["x-canary", string.Empty, "x-mesh-subset"], ["bad header", "ünïcode"]));
                }

                if (Maybe())
                {
                    writer.WriteStartObject("Defaults");
                    WriteTimeoutAndRetries();
                    writer.WriteEndObject();
                }

                if (Maybe())
                {
                    writer.WriteStartObject("Destinations");
                    var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
                    for (var d = random.Next(0, 4); d > 0; d--)
                    {
                        var name = Pick(["orders", "inventory", "orders.payments", "payments"], ["Orders!", "with space", "-x"]);
                        if (names.Add(name))
                        {
                            writer.WriteStartObject(name);
                            WriteTimeoutAndRetries();
                            writer.WriteEndObject();
                        }
                    }

                    writer.WriteEndObject();
                }

                writer.WriteEndObject();
            }

            if (random.Next(3) != 0)
            {
                writer.WriteStartObject("Authorization");
                if (Maybe())
                {
                    writer.WriteString("DefaultAction", Pick(["Allow", "Deny", "allow"], ["Maybe", string.Empty]));
                }

                if (random.Next(4) != 0)
                {
                    writer.WriteStartArray("Rules");
                    for (var r = random.Next(0, 5); r > 0; r--)
                    {
                        writer.WriteStartObject();
                        if (Maybe())
                        {
                            writer.WriteString("Name", Pick(["frontend-reads", "no-admin", "probes"], [string.Empty]));
                        }

                        if (Maybe())
                        {
                            writer.WriteString("Action", Pick(["Allow", "Deny", "deny"], ["Perhaps", "2"]));
                        }

                        if (Maybe())
                        {
                            writer.WriteStartObject("From");
                            writer.WriteStartArray("Services");
                            writer.WriteStringValue(Pick(["frontend", "shop/frontend"], ["Not A Service", "a/b/c"]));
                            writer.WriteEndArray();
                            writer.WriteEndObject();
                        }

                        if (Maybe())
                        {
                            writer.WriteStartObject("To");
                            writer.WriteStartArray("Paths");
                            writer.WriteStringValue(Pick(["/api/*", "/api/orders/{id}", "*"], ["api", string.Empty]));
                            writer.WriteEndArray();
                            if (Maybe())
                            {
                                writer.WriteStartArray("Methods");
                                writer.WriteStringValue(Pick(["GET", "post"], ["BREW"]));
                                writer.WriteEndArray();
                            }

                            writer.WriteEndObject();
                        }

                        writer.WriteEndObject();
                    }

                    writer.WriteEndArray();
                }

                writer.WriteEndObject();
            }

            if (wrapped)
            {
                writer.WriteEndObject();
            }

            writer.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static string Mutate(string text, Random random)
    {
        var chars = text.ToCharArray();
        for (var i = random.Next(1, 6); i > 0; i--)
        {
            chars[random.Next(chars.Length)] = "{}[]\":,0a\\ \u0000"[random.Next(12)];
        }

        return new string(chars);
    }

    private static string RandomText(Random random)
    {
        var length = random.Next(0, 200);
        var builder = new StringBuilder(length);
        for (var i = 0; i < length; i++)
        {
            builder.Append((char)random.Next(1, 0x2FF));
        }

        return builder.ToString();
    }

    private static int AssertErrorsNameKeysOf(string json, PolicyReadResult result, string context)
    {
        var keys = KeysOf(json);
        foreach (var error in result.Errors)
        {
            Assert.False(string.IsNullOrWhiteSpace(error.Message), $"{context}: an error without a message");
            Assert.True(
                error.Path == "(document)" || keys.Contains(error.Path) || keys.Any(k => k.StartsWith(error.Path + ":", StringComparison.OrdinalIgnoreCase)),
                $"{context}: error path '{error.Path}' is not a key of the document ({error.Message})\n{json}");
        }

        return result.Errors.Count;
    }

    /// <summary>
    /// What a valid document says is what the snapshot holds: authorization on exactly when the section has content, its
    /// default action and its rules in order by name and action; the destinations it lists and no others; the subset
    /// header; the defaults' timeout and retries and what destinations inherit of them; and a version that is the empty
    /// policy's exactly when the document sets nothing, and that does not depend on the order of its keys.
    /// </summary>
    private static void AssertSnapshotReflects(IConfiguration document, PolicySnapshot snapshot, string context, Coverage stats)
    {
        var authorization = document.GetSection("Authorization");
        Assert.True(authorization.Exists() == snapshot.Authorization.Enabled, $"{context}: authorization on is {snapshot.Authorization.Enabled}");
        if (snapshot.Authorization.Enabled)
        {
            stats.WithAuthorization++;
            var expectedDefault = authorization["DefaultAction"] is { } action ? Enum.Parse<MeshKit.Authorization.AuthorizationAction>(action, ignoreCase: true) : MeshKit.Authorization.AuthorizationAction.Deny;
            Assert.True(expectedDefault == snapshot.Authorization.DefaultAction, $"{context}: default action {snapshot.Authorization.DefaultAction}");
            var rules = authorization.GetSection("Rules").GetChildren().OrderBy(c => int.Parse(c.Key, CultureInfo.InvariantCulture)).ToList();
            Assert.True(rules.Count == snapshot.Authorization.Rules.Length, $"{context}: {snapshot.Authorization.Rules.Length} rules");
            for (var r = 0; r < rules.Count; r++)
            {
                var rule = snapshot.Authorization.Rules[r];
                Assert.True((rules[r]["Name"] ?? $"rule-{r}") == rule.Name, $"{context}: rule {r} is named {rule.Name}");
                var ruleAction = rules[r]["Action"] is { } a ? Enum.Parse<MeshKit.Authorization.AuthorizationAction>(a, ignoreCase: true) : MeshKit.Authorization.AuthorizationAction.Allow;
                Assert.True(ruleAction == rule.Action, $"{context}: rule {r} does {rule.Action}");
            }
        }

        var policy = document.GetSection("Policy");
        var destinations = policy.GetSection("Destinations").GetChildren().Select(c => c.Key).Order(StringComparer.Ordinal).ToList();
        Assert.True(destinations.SequenceEqual(snapshot.Destinations.Keys.Order(StringComparer.Ordinal)), $"{context}: destinations {string.Join(", ", snapshot.Destinations.Keys)}");

        var header = policy["SubsetHeader"];
        Assert.True((header is null ? "x-mesh-subset" : header.Length == 0 ? null : header) == snapshot.SubsetHeader, $"{context}: subset header {snapshot.SubsetHeader}");

        var defaultTimeout = Duration(policy["Defaults:Timeout"]) ?? TimeSpan.FromSeconds(30);
        Assert.True(defaultTimeout == snapshot.Defaults.Timeout, $"{context}: default timeout {snapshot.Defaults.Timeout}");
        var defaultRetries = policy["Defaults:Retry:MaxRetries"] is { } retries ? int.Parse(retries, CultureInfo.InvariantCulture) : 2;
        Assert.True(defaultRetries == snapshot.Defaults.Retry.MaxRetries, $"{context}: default retries {snapshot.Defaults.Retry.MaxRetries}");
        foreach (var name in destinations)
        {
            var own = policy.GetSection("Destinations").GetSection(name);
            Assert.True((Duration(own["Timeout"]) ?? defaultTimeout) == snapshot.Destinations[name].Timeout, $"{context}: {name} times out after {snapshot.Destinations[name].Timeout}");
            var ownRetries = own["Retry:MaxRetries"] is { } n ? int.Parse(n, CultureInfo.InvariantCulture) : snapshot.Defaults.Retry.MaxRetries;
            Assert.True(ownRetries == snapshot.Destinations[name].Retry.MaxRetries, $"{context}: {name} retries {snapshot.Destinations[name].Retry.MaxRetries} times");
        }

        var setsSomething = policy.AsEnumerable().Concat(authorization.AsEnumerable()).Any(kv => kv.Value is not null);
        stats.WithSettings += setsSomething ? 1 : 0;
        Assert.True(setsSomething == (snapshot.Version != EmptyVersion), $"{context}: version {snapshot.Version} (the empty policy's is {EmptyVersion})");

        // The same settings in the opposite order: the same snapshot.
        var path = document is IConfigurationSection section ? section.Path : string.Empty;
        var reversed = new ConfigurationBuilder().AddInMemoryCollection(document.AsEnumerable().Reverse()).Build();
        var again = PolicyReader.Read(path.Length == 0 ? reversed : reversed.GetSection(path), path.Length == 0 ? string.Empty : path);
        Assert.True(again.IsValid, $"{context}: the same settings in another order are invalid: {string.Join("; ", again.Errors)}");
        Assert.True(snapshot.Version == again.Snapshot!.Version, $"{context}: version {snapshot.Version}, then {again.Snapshot.Version}");
        Assert.True(snapshot.Authorization.Rules.Select(r => r.Name).SequenceEqual(again.Snapshot.Authorization.Rules.Select(r => r.Name)), $"{context}: rules in another order");
    }

    private static readonly string EmptyVersion = PolicyReader.ReadJson("{}").Snapshot!.Version;

    private static TimeSpan? Duration(string? value) => value is null ? null : TimeSpan.Parse(value, CultureInfo.InvariantCulture);

    private static IConfiguration DocumentOf(string json) => TryDocumentOf(json) ?? throw new InvalidDataException("not JSON");

    /// <summary>The document as the reader sees it: its <c>Mesh</c> section when it has one, else its root.</summary>
    private static IConfiguration? TryDocumentOf(string json)
    {
        IConfigurationRoot root;
        try
        {
            root = new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json))).Build();
        }
        catch (Exception ex) when (ex is FormatException or InvalidDataException or JsonException)
        {
            return null;
        }

        return root.GetSection("Mesh").Exists() ? root.GetSection("Mesh") : root;
    }

    private sealed class Coverage
    {
        public int WithSettings { get; set; }

        public int WithAuthorization { get; set; }
    }

    private static HashSet<string> KeysOf(string json)
    {
        // The document's keys as configuration paths (how the reader names them), including every prefix.
        var root = new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json))).Build();
        var keys = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (key, _) in root.AsEnumerable())
        {
            var parts = key.Split(':');
            for (var i = 1; i <= parts.Length; i++)
            {
                keys.Add(string.Join(':', parts.Take(i)));
            }
        }

        return keys;
    }
}
