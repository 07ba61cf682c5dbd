using MeshKit.Consul;
using Microsoft.Extensions.Options;

namespace MeshKit.Discovery;

/// <summary>
/// How a workload registers itself in Consul, bound from <c>Mesh:Discovery:Consul</c> beside the client settings of
/// <see cref="ConsulOptions"/>. Used once <c>builder.AddMeshConsulDiscovery()</c> was called and
/// <c>Mesh:Discovery:Consul:Address</c> is set.
/// </summary>
public sealed class ConsulRegistrationOptions
{
    /// <summary>The tag every MeshKit instance carries in Consul.</summary>
    public const string MeshKitTag = "meshkit";

    /// <summary>
    /// Gets or sets a value indicating whether this workload registers its mesh endpoint in Consul. Default
    /// <see langword="true"/>; a workload without a mesh endpoint never registers. Set <see langword="false"/> to only
    /// discover through Consul.
    /// </summary>
    public bool Register { get; set; } = true;

    /// <summary>Gets the instance's Consul tags besides <c>meshkit</c>, which is always there.</summary>
    public IList<string> Tags { get; } = [];

    /// <summary>
    /// Gets or sets the TTL of the instance's check: Consul marks it critical (and leaves it out of discovery) when the
    /// process has not reported for this long. It is reported every third of it. Default 15 seconds; from 1 second to
    /// 1 hour.
    /// </summary>
    public TimeSpan Ttl { get; set; } = ConsulTtlCheck.DefaultTtl;

    /// <summary>
    /// Gets or sets how long the check may stay critical before Consul removes the instance, so a crashed instance is
    /// reaped. Default 1 minute, Consul's minimum; <see cref="TimeSpan.Zero"/> never reaps.
    /// </summary>
    public TimeSpan DeregisterCriticalServiceAfter { get; set; } = ConsulTtlCheck.DefaultDeregisterCriticalServiceAfter;

    /// <summary>
    /// Gets or sets how often the host's health checks (<c>AddHealthChecks()</c>, when registered) are run to decide the
    /// check's status: Unhealthy turns it critical, Healthy and Degraded keep it passing. Default 5 seconds; from
    /// 100 ms to 10 minutes.
    /// </summary>
    public TimeSpan HealthCheckInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Gets or sets how long a graceful stop waits, after deregistering, for requests in flight to finish before the
    /// server closes its connections (HTTP/2 GOAWAY). Default 10 seconds; from 0 to 5 minutes. The host's shutdown
    /// timeout is raised to cover it.
    /// </summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(10);
}

/// <summary>Validates <see cref="ConsulRegistrationOptions"/>; every error names its full key and what would be valid.</summary>
internal sealed class ConsulRegistrationOptionsValidator : IValidateOptions<ConsulRegistrationOptions>
{
    private const string Root = ConsulOptions.SectionPath;

    public ValidateOptionsResult Validate(string? name, ConsulRegistrationOptions options)
    {
        var errors = new List<string>();
        for (var i = 0; i < options.Tags.Count; i++)
        {
            var tag = options.Tags[i];
            if (string.IsNullOrWhiteSpace(tag) || tag.Length > 255 || tag.Any(char.IsControl))
            {
                errors.Add($"{Root}:Tags:{i} '{tag}' is not a tag; use 1 to 255 printable characters, such as 'canary' or 'eu-west'.");
            }
        }

        Check(errors, "Ttl", options.Ttl, TimeSpan.FromSeconds(1), TimeSpan.FromHours(1), "00:00:01", "01:00:00");
        if (options.DeregisterCriticalServiceAfter != TimeSpan.Zero
            && (options.DeregisterCriticalServiceAfter < ConsulTtlCheck.DefaultDeregisterCriticalServiceAfter || options.DeregisterCriticalServiceAfter > TimeSpan.FromDays(7)))
        {
            errors.Add($"{Root}:DeregisterCriticalServiceAfter is {options.DeregisterCriticalServiceAfter}; use a value from 00:01:00 (Consul's minimum) to 7.00:00:00, or 00:00:00 to never reap.");
        }

        Check(errors, "HealthCheckInterval", options.HealthCheckInterval, TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(10), "00:00:00.100", "00:10:00");
        Check(errors, "DrainTimeout", options.DrainTimeout, TimeSpan.Zero, TimeSpan.FromMinutes(5), "00:00:00", "00:05:00");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void Check(List<string> errors, string key, TimeSpan value, TimeSpan min, TimeSpan max, string minText, string maxText)
    {
        if (value < min || value > max)
        {
            errors.Add($"{Root}:{key} is {value}; use a value from {minText} to {maxText}.");
        }
    }
}
