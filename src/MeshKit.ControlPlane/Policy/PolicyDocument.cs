using System.Text;
using System.Text.Json;
using MeshKit.Policy;
using Microsoft.Extensions.Configuration;

namespace MeshKit.ControlPlane.Policy;

/// <summary>A stored central policy document for one service.</summary>
/// <param name="Service">The service key: <c>orders</c>, or <c>orders.payments</c> outside the default namespace.</param>
/// <param name="Json">The document as written: <c>{ "Policy": ..., "Authorization": ... }</c>.</param>
/// <param name="Version">Its content version (the same hash workloads compute).</param>
/// <param name="Revision">
/// The store's revision of the document (Consul's ModifyIndex, or the file's write time in milliseconds; 0 for a seed from
/// configuration). Revisions of one service only grow, deletions included, so a workload can tell a newer deletion from an older one.
/// </param>
internal sealed record StoredPolicy(string Service, string Json, string Version, ulong Revision);

/// <summary>One difference between two policy documents, by configuration key.</summary>
internal sealed record PolicyChange(string Op, string Path, string? Old, string? New);

/// <summary>Reads, validates, flattens and compares central policy documents, with the workloads' own validator.</summary>
internal static class PolicyDocument
{
    /// <summary>
    /// Validates a central document. Unlike appsettings, it must hold <c>Policy</c> and <c>Authorization</c> at its top:
    /// workloads read it that way, so a document wrapped in <c>Mesh</c> would validate and then do nothing.
    /// </summary>
    public static PolicyReadResult Validate(string json)
    {
        var result = PolicyReader.ReadJson(json);
        if (HasTopLevelMesh(json))
        {
            PolicyError wrapped = new("Mesh", "belongs in appsettings; a central policy document holds Policy and Authorization at its top.");
            return new PolicyReadResult(null, [wrapped, .. result.Errors]);
        }

        return result;
    }

    private static bool HasTopLevelMesh(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            return document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.EnumerateObject().Any(p => string.Equals(p.Name, "Mesh", StringComparison.OrdinalIgnoreCase));
        }
        catch (JsonException)
        {
            return false; // the reader has already named the JSON error
        }
    }

    /// <summary>The service key of a workload: its name, or <c>name.namespace</c> outside the default namespace.</summary>
    public static string ServiceKey(Identity.SpiffeId id) =>
        id.Namespace == Identity.SpiffeId.DefaultNamespace ? id.Service : $"{id.Service}.{id.Namespace}";

    /// <summary>Whether a text is a service key (<see cref="MeshNames.IsValidServiceKey"/>), as central policies are named.</summary>
    public static bool IsServiceKey(string service) => MeshNames.IsValidServiceKey(service, out _);

    /// <summary>Flattens a document into sorted configuration keys and values.</summary>
    public static SortedDictionary<string, string> Flatten(string? json)
    {
        var result = new SortedDictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        if (string.IsNullOrWhiteSpace(json))
        {
            return result;
        }

        var root = new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json))).Build();
        foreach (var (key, value) in root.AsEnumerable())
        {
            if (value is not null)
            {
                result[key] = value;
            }
        }

        return result;
    }

    /// <summary>The changes that turn <paramref name="current"/> into <paramref name="proposed"/>.</summary>
    public static List<PolicyChange> Diff(string? current, string proposed)
    {
        var before = Flatten(current);
        var after = Flatten(proposed);
        var changes = new List<PolicyChange>();
        foreach (var (key, value) in after)
        {
            if (!before.TryGetValue(key, out var old))
            {
                changes.Add(new PolicyChange("add", key, null, value));
            }
            else if (!string.Equals(old, value, StringComparison.Ordinal))
            {
                changes.Add(new PolicyChange("change", key, old, value));
            }
        }

        foreach (var (key, value) in before)
        {
            if (!after.ContainsKey(key))
            {
                changes.Add(new PolicyChange("remove", key, value, null));
            }
        }

        changes.Sort((a, b) => string.Compare(a.Path, b.Path, StringComparison.OrdinalIgnoreCase));
        return changes;
    }

    /// <summary>Writes a configuration section (a seed policy in appsettings) as a JSON document.</summary>
    public static string ToJson(IConfigurationSection section)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            Write(writer, section);
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void Write(Utf8JsonWriter writer, IConfigurationSection section)
    {
        var children = section.GetChildren().ToList();
        if (children.Count == 0)
        {
            writer.WriteStringValue(section.Value);
            return;
        }

        // Numeric keys 0..n-1 were an array; the configuration JSON provider reads either form the same way.
        var isArray = children.Select((c, i) => c.Key == i.ToString(System.Globalization.CultureInfo.InvariantCulture)).All(x => x);
        if (isArray)
        {
            writer.WriteStartArray();
            foreach (var child in children)
            {
                Write(writer, child);
            }

            writer.WriteEndArray();
            return;
        }

        writer.WriteStartObject();
        foreach (var child in children)
        {
            writer.WritePropertyName(child.Key);
            Write(writer, child);
        }

        writer.WriteEndObject();
    }
}
