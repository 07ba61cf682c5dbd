using System.Security.Cryptography;

namespace MeshKit.Consul;

/// <summary>A TTL check: the process itself reports its health, and Consul marks it critical if a report is late.</summary>
public sealed class ConsulTtlCheck
{
    /// <summary>MeshKit's default TTL, 15 seconds (renewed every 5 seconds).</summary>
    public static readonly TimeSpan DefaultTtl = TimeSpan.FromSeconds(15);

    /// <summary>The default and Consul's minimum for <see cref="DeregisterCriticalServiceAfter"/>: 1 minute.</summary>
    public static readonly TimeSpan DefaultDeregisterCriticalServiceAfter = TimeSpan.FromMinutes(1);

    /// <summary>Gets the check ID. Default <c>service:&lt;instance id&gt;</c>.</summary>
    public string? Id { get; init; }

    /// <summary>Gets the check's display name. Default <c>MeshKit TTL</c>.</summary>
    public string? Name { get; init; }

    /// <summary>Gets the time after the last report at which Consul marks the check critical. Default 15 seconds.</summary>
    public TimeSpan Ttl { get; init; } = DefaultTtl;

    /// <summary>
    /// Gets how long the check may stay critical before Consul removes the instance (a crashed instance is reaped this
    /// way). Default 1 minute, Consul's minimum; Consul raises shorter values to 1 minute. <see cref="TimeSpan.Zero"/> never reaps.
    /// </summary>
    public TimeSpan DeregisterCriticalServiceAfter { get; init; } = DefaultDeregisterCriticalServiceAfter;

    /// <summary>Gets the status the check starts in. Default <see cref="ConsulCheckStatus.Critical"/>, as in Consul.</summary>
    public ConsulCheckStatus InitialStatus { get; init; } = ConsulCheckStatus.Critical;

    /// <summary>Gets free text shown with the check in the Consul UI.</summary>
    public string? Notes { get; init; }
}
