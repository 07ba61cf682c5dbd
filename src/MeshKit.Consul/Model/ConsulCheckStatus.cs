namespace MeshKit.Consul;

/// <summary>The status a TTL check can be set to.</summary>
public enum ConsulCheckStatus
{
    /// <summary>The instance is healthy and appears in <c>?passing</c> results.</summary>
    Passing,

    /// <summary>The instance is degraded; Consul leaves it out of <c>?passing</c> results.</summary>
    Warning,

    /// <summary>The instance is unhealthy; Consul leaves it out of <c>?passing</c> results and reaps it after <c>DeregisterCriticalServiceAfter</c>.</summary>
    Critical,
}
