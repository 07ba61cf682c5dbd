using System.Security.Cryptography;

namespace MeshKit.Consul;

/// <summary>A service instance to register with the local Consul agent (<c>PUT /v1/agent/service/register</c>).</summary>
public sealed class ConsulServiceRegistration
{
    /// <summary>Gets the instance ID: unique per instance, stable for its lifetime. See <see cref="NewInstanceId"/>.</summary>
    public required string Id { get; init; }

    /// <summary>Gets the service name other services discover it by (for example <c>orders</c>).</summary>
    public required string Name { get; init; }

    /// <summary>
    /// Gets the address to reach the instance on. <see langword="null"/> or empty registers none, which Consul
    /// answers as the node's address.
    /// </summary>
    public string? Address { get; init; }

    /// <summary>Gets the port the instance listens on (MeshKit registers its mesh endpoint).</summary>
    public int Port { get; init; }

    /// <summary>Gets the instance's tags.</summary>
    public IReadOnlyList<string> Tags { get; init; } = [];

    /// <summary>
    /// Gets the instance's metadata. Consul allows up to 64 pairs, keys of letters, digits, <c>-</c> and <c>_</c> up to
    /// 128 characters and values up to 512 characters.
    /// </summary>
    public IReadOnlyDictionary<string, string> Meta { get; init; } = ConsulService.NoMeta;

    /// <summary>Gets the instance's TTL check, if any. An instance without checks always counts as passing.</summary>
    public ConsulTtlCheck? Check { get; init; }

    /// <summary>Gets the instance's DNS SRV weights, if any.</summary>
    public ConsulServiceWeights? Weights { get; init; }

    /// <summary>Gets the ID of the instance's TTL check: <see cref="ConsulTtlCheck.Id"/>, or Consul's own default <c>service:&lt;Id&gt;</c>.</summary>
    public string CheckId => Check?.Id is { Length: > 0 } id ? id : "service:" + Id;

    /// <summary>Makes an instance ID for <paramref name="serviceName"/>: the name and 12 random hex digits.</summary>
    /// <param name="serviceName">The service name.</param>
    /// <returns>An ID such as <c>orders-3f9c0a7d12be</c>.</returns>
    public static string NewInstanceId(string serviceName)
    {
        ArgumentException.ThrowIfNullOrEmpty(serviceName);
        return serviceName + "-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
    }

    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(Id))
        {
            throw new ArgumentException("A Consul registration needs an instance Id; use ConsulServiceRegistration.NewInstanceId(name).", nameof(Id));
        }

        if (string.IsNullOrWhiteSpace(Name))
        {
            throw new ArgumentException($"The Consul registration '{Id}' needs a service Name.", nameof(Name));
        }

        if (Port is < 0 or > 65535)
        {
            throw new ArgumentOutOfRangeException(nameof(Port), Port, $"The Consul registration '{Id}' has port {Port}; use 0 to 65535.");
        }

        if (Check is { } check)
        {
            if (check.Ttl <= TimeSpan.Zero)
            {
                throw new ArgumentOutOfRangeException(nameof(Check), check.Ttl, $"The TTL check of '{Id}' has TTL {check.Ttl}; use a positive duration (MeshKit's default is 15 s).");
            }

            if (check.DeregisterCriticalServiceAfter < TimeSpan.Zero)
            {
                throw new ArgumentOutOfRangeException(nameof(Check), check.DeregisterCriticalServiceAfter, $"The TTL check of '{Id}' has DeregisterCriticalServiceAfter {check.DeregisterCriticalServiceAfter}; use zero (never) or a positive duration (Consul's minimum is 1 minute).");
            }
        }
    }
}
