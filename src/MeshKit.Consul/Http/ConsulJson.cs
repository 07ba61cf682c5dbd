using System.Text.Json.Serialization;

namespace MeshKit.Consul;

/// <summary>Source-generated JSON for Consul's bodies; Consul spells its fields in PascalCase, as these types do.</summary>
[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(List<ConsulServiceEntry>))]
[JsonSerializable(typeof(List<ConsulKeyValue>))]
[JsonSerializable(typeof(Dictionary<string, List<string>?>))]
[JsonSerializable(typeof(AgentServiceRegistrationBody))]
[JsonSerializable(typeof(CheckUpdateBody))]
[JsonSerializable(typeof(bool))]
[JsonSerializable(typeof(SessionCreateBody))]
[JsonSerializable(typeof(SessionCreatedBody))]
[JsonSerializable(typeof(List<SessionEntryBody>))]
internal sealed partial class ConsulJsonContext : JsonSerializerContext;

/// <summary>The body of <c>PUT /v1/agent/service/register</c>.</summary>
internal sealed class AgentServiceRegistrationBody
{
    [JsonPropertyName("ID")]
    public required string Id { get; init; }

    public required string Name { get; init; }

    public IReadOnlyList<string>? Tags { get; init; }

    public string? Address { get; init; }

    public int Port { get; init; }

    public IReadOnlyDictionary<string, string>? Meta { get; init; }

    public AgentCheckBody? Check { get; init; }

    public ConsulServiceWeights? Weights { get; init; }
}

/// <summary>A check inside a registration body.</summary>
internal sealed class AgentCheckBody
{
    [JsonPropertyName("CheckID")]
    public required string Id { get; init; }

    public required string Name { get; init; }

    [JsonPropertyName("TTL")]
    public required string Ttl { get; init; }

    public string? DeregisterCriticalServiceAfter { get; init; }

    public required string Status { get; init; }

    public string? Notes { get; init; }
}

/// <summary>The body of <c>PUT /v1/agent/check/update/&lt;id&gt;</c>.</summary>
internal sealed class CheckUpdateBody
{
    public required string Status { get; init; }

    public string? Output { get; init; }
}

/// <summary>The body of <c>PUT /v1/session/create</c>; a null field keeps Consul's default.</summary>
internal sealed class SessionCreateBody
{
    public string? Name { get; init; }

    public string? Node { get; init; }

    public required string LockDelay { get; init; }

    public required string Behavior { get; init; }

    [JsonPropertyName("TTL")]
    public string? Ttl { get; init; }

    /// <summary>Written when set, even empty: an empty list is how Consul is told "no node checks, TTL only".</summary>
    public IReadOnlyList<string>? NodeChecks { get; init; }
}

/// <summary>The answer of <c>PUT /v1/session/create</c>.</summary>
internal sealed class SessionCreatedBody
{
    [JsonPropertyName("ID")]
    public string? Id { get; init; }
}

/// <summary>A session as Consul writes it: the lock delay in nanoseconds, the TTL as a Go duration.</summary>
internal sealed class SessionEntryBody
{
    [JsonPropertyName("ID")]
    public string? Id { get; init; }

    public string? Name { get; init; }

    public string? Node { get; init; }

    public long LockDelay { get; init; }

    public string? Behavior { get; init; }

    [JsonPropertyName("TTL")]
    public string? Ttl { get; init; }

    public List<string>? NodeChecks { get; init; }

    /// <summary>Agents before 1.7 list node checks here.</summary>
    public List<string>? Checks { get; init; }

    public ulong CreateIndex { get; init; }

    public ulong ModifyIndex { get; init; }
}
