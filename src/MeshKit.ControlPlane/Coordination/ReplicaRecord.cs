using System.Text.Json;
using System.Text.Json.Serialization;

namespace MeshKit.ControlPlane.Coordination;

/// <summary>
/// A control-service replica as the leader key names it: its ID (unique per process) and the address its APIs answer
/// on. The leader writes it into <c>&lt;KeyPrefix&gt;leader</c> as JSON, so followers can say who leads.
/// </summary>
/// <param name="Replica">The replica's ID, <c>&lt;machine&gt;-&lt;8 hex digits&gt;</c>, new on each start.</param>
/// <param name="Address">The replica's HTTPS address, or <see langword="null"/> before it listens.</param>
internal sealed record ReplicaRecord(
    [property: JsonPropertyName("replica")] string Replica,
    [property: JsonPropertyName("address")] Uri? Address)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>Gets the replica in words, for logs and refusals: <c>host-1a2b3c4d at https://10.0.0.5:7443/</c>.</summary>
    public override string ToString() => Address is null ? Replica : $"{Replica} at {Address}";

    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, Json);

    /// <summary>Reads what a leader wrote; <see langword="null"/> for anything else (an empty key, another tool's value).</summary>
    public static ReplicaRecord? TryParse(ReadOnlyMemory<byte> value)
    {
        if (value.IsEmpty)
        {
            return null;
        }

        try
        {
            var record = JsonSerializer.Deserialize<ReplicaRecord>(value.Span, Json);
            return string.IsNullOrEmpty(record?.Replica) ? null : record;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
