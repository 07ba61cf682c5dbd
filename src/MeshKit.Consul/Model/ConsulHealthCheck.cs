using System.Text.Json.Serialization;

namespace MeshKit.Consul;

/// <summary>A health check of a node or of a service instance.</summary>
public sealed class ConsulHealthCheck
{
    /// <summary>Gets the check ID (for example <c>serfHealth</c> or <c>service:orders-1</c>).</summary>
    [JsonPropertyName("CheckID")]
    public string Id { get; init => field = value ?? string.Empty; } = string.Empty;

    /// <summary>Gets the check's name.</summary>
    public string Name { get; init => field = value ?? string.Empty; } = string.Empty;

    /// <summary>Gets the status: <c>passing</c>, <c>warning</c> or <c>critical</c>.</summary>
    public string Status { get; init => field = value ?? string.Empty; } = string.Empty;

    /// <summary>Gets the last output of the check.</summary>
    public string Output { get; init => field = value ?? string.Empty; } = string.Empty;

    /// <summary>Gets the ID of the instance the check belongs to; empty for a node check.</summary>
    [JsonPropertyName("ServiceID")]
    public string ServiceId { get; init => field = value ?? string.Empty; } = string.Empty;

    /// <summary>Gets the name of the service the check belongs to; empty for a node check.</summary>
    public string ServiceName { get; init => field = value ?? string.Empty; } = string.Empty;
}
