using System.Text.Json.Serialization;

namespace MeshKit.Server;

/// <summary>A problem+json body.</summary>
internal sealed record ProblemBody(
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("title")] string Title,
    [property: JsonPropertyName("status")] int Status,
    [property: JsonPropertyName("detail")] string Detail,
    [property: JsonPropertyName("reason")] string Reason);

/// <summary>Source-generated JSON for MeshKit's own bodies (no reflection on the request path).</summary>
[JsonSerializable(typeof(ProblemBody))]
internal sealed partial class MeshJsonContext : JsonSerializerContext;
