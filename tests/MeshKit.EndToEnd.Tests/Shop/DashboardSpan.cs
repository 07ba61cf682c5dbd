using System.Text.Json;

namespace MeshKit.EndToEnd.Tests.Shop;

/// <summary>A span as the Aspire dashboard's telemetry API returns it (OTLP JSON), flattened with its resource's name.</summary>
/// <param name="Resource">The resource that exported it (<c>service.name</c>: frontend, orders-v1, ...).</param>
/// <param name="Scope">The instrumentation scope (MeshKit, Microsoft.AspNetCore, System.Net.Http, ...).</param>
/// <param name="TraceId">The trace id (hex).</param>
/// <param name="SpanId">The span id (hex).</param>
/// <param name="ParentSpanId">The parent span id, empty for a root.</param>
/// <param name="Name">The span name.</param>
/// <param name="Kind">The OTLP span kind: 1 internal, 2 server, 3 client.</param>
/// <param name="Attributes">The attributes; the dashboard gives every value as a string.</param>
public sealed record DashboardSpan(
    string Resource,
    string Scope,
    string TraceId,
    string SpanId,
    string ParentSpanId,
    string Name,
    int Kind,
    IReadOnlyDictionary<string, string> Attributes)
{
    public const int ServerKind = 2;

    public bool IsServer => Kind == ServerKind;

    public string? this[string attribute] => Attributes.TryGetValue(attribute, out var value) ? value : null;

    public override string ToString() => $"{Resource} {Scope} '{Name}' kind {Kind} {SpanId}<-{ParentSpanId} [{string.Join(", ", Attributes.Where(a => a.Key.StartsWith("mesh.", StringComparison.Ordinal) || a.Key.StartsWith("shop.", StringComparison.Ordinal)).Select(a => $"{a.Key}={a.Value}"))}]";

    /// <summary>Reads every span of an answer of <c>/api/telemetry/traces</c>, <c>/traces/{id}</c> or <c>/spans</c>.</summary>
    internal static List<DashboardSpan> Read(JsonElement answer)
    {
        var spans = new List<DashboardSpan>();
        if (!answer.TryGetProperty("data", out var data) || !data.TryGetProperty("resourceSpans", out var resourceSpans))
        {
            return spans;
        }

        foreach (var resourceSpan in resourceSpans.EnumerateArray())
        {
            var resource = ReadAttributes(resourceSpan.GetProperty("resource")).GetValueOrDefault("service.name", "?");
            foreach (var scopeSpan in resourceSpan.GetProperty("scopeSpans").EnumerateArray())
            {
                var scope = scopeSpan.TryGetProperty("scope", out var s) && s.TryGetProperty("name", out var n) ? n.GetString() ?? "?" : "?";
                foreach (var span in scopeSpan.GetProperty("spans").EnumerateArray())
                {
                    spans.Add(new DashboardSpan(
                        resource,
                        scope,
                        span.GetProperty("traceId").GetString() ?? string.Empty,
                        span.GetProperty("spanId").GetString() ?? string.Empty,
                        span.TryGetProperty("parentSpanId", out var parent) ? parent.GetString() ?? string.Empty : string.Empty,
                        span.GetProperty("name").GetString() ?? string.Empty,
                        span.TryGetProperty("kind", out var kind) && kind.ValueKind == JsonValueKind.Number ? kind.GetInt32() : 0,
                        ReadAttributes(span)));
                }
            }
        }

        return spans;
    }

    private static Dictionary<string, string> ReadAttributes(JsonElement owner)
    {
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal);
        if (owner.TryGetProperty("attributes", out var list))
        {
            foreach (var attribute in list.EnumerateArray())
            {
                var value = attribute.GetProperty("value");
                attributes[attribute.GetProperty("key").GetString()!] = value.TryGetProperty("stringValue", out var text) ? text.GetString() ?? string.Empty : value.ToString();
            }
        }

        return attributes;
    }
}
