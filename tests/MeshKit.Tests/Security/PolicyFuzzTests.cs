using System.Globalization;
using System.Text;
using System.Text.Json;
using MeshKit.Policy;
using Microsoft.Extensions.Configuration;

namespace MeshKit.Tests.Security;

/// <summary>
/// The policy reader against random and malformed input, from a seeded generator (reproducible: a failure names its seed
/// and iteration). It must never throw, and every error must name a key of the input.
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
        for (var i = 0; i < 1500; i++)
        {
            var json = RandomDocument(random, depth: 0);
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

            if (result.IsValid)
            {
                valid++;
                continue;
            }

            var keys = KeysOf(json);
            foreach (var error in result.Errors)
            {
                checkedErrors++;
                Assert.False(string.IsNullOrWhiteSpace(error.Message), $"Seed {Seed}, iteration {i}: an error without a message");
                Assert.True(
                    error.Path == "(document)" || keys.Contains(error.Path) || keys.Any(k => k.StartsWith(error.Path + ":", StringComparison.OrdinalIgnoreCase)),
                    $"Seed {Seed}, iteration {i}: error path '{error.Path}' is not a key of the document ({error.Message})\n{json}");
            }
        }

        // The generator must exercise both sides, or the property says nothing.
        Assert.True(checkedErrors > 1000, $"only {checkedErrors} errors were checked");
        Assert.True(valid > 10, $"only {valid} documents were valid");
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
        Assert.True(PolicyReader.ReadJson(Valid).IsValid);

        for (var i = 0; i < 1500; i++)
        {
            var text = (i % 3) switch
            {
                0 => Valid[..random.Next(Valid.Length)],
                1 => Mutate(Valid, random),
                _ => RandomText(random),
            };

            var result = PolicyReader.ReadJson(text);
            Assert.True(result.IsValid || result.Errors.Count > 0, $"Seed {Seed}, iteration {i}: neither valid nor with errors");
        }
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
