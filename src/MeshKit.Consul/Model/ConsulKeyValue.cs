using System.Text;
using System.Text.Json.Serialization;

namespace MeshKit.Consul;

/// <summary>One key of Consul's KV store as <c>GET /v1/kv/&lt;key&gt;</c> returns it.</summary>
public sealed class ConsulKeyValue
{
    /// <summary>Gets the full key.</summary>
    public string Key { get; init => field = value ?? string.Empty; } = string.Empty;

    /// <summary>Gets the value (decoded from Consul's base64); empty when the key holds no value.</summary>
    public ReadOnlyMemory<byte> Value { get; init; }

    /// <summary>Gets the opaque flags stored with the key.</summary>
    public ulong Flags { get; init; }

    /// <summary>Gets the index at which the key was created.</summary>
    public ulong CreateIndex { get; init; }

    /// <summary>Gets the index of the key's last change; pass it as <c>cas</c> to change the key only if nobody else did.</summary>
    public ulong ModifyIndex { get; init; }

    /// <summary>Gets how many times a session acquired the key's lock.</summary>
    public ulong LockIndex { get; init; }

    /// <summary>Gets the session holding the key's lock, if any.</summary>
    [JsonPropertyName("Session")]
    public string? Session { get; init; }

    /// <summary>Decodes <see cref="Value"/> as UTF-8.</summary>
    /// <returns>The value as text.</returns>
    public string GetValueAsString() => Encoding.UTF8.GetString(Value.Span);
}
