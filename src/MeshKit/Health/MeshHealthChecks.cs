using MeshKit.Discovery;
using MeshKit.Identity;
using MeshKit.Policy;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;

namespace MeshKit.Health;

/// <summary>The workload certificate is valid and not near expiry (renewal is keeping up).</summary>
internal sealed class IdentityHealthCheck(WorkloadIdentitySource identity, TimeProvider time) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var current = identity.Current;
        var now = time.GetUtcNow();
        if (current is null)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy("No workload certificate (not issued yet, or revoked)."));
        }

        if (current.IsExpired(now))
        {
            return Task.FromResult(HealthCheckResult.Unhealthy($"The workload certificate of {current.Id} expired at {current.NotAfter:O}."));
        }

        // Renewal normally happens at half the lifetime; with less than a fifth left it is clearly failing.
        var left = current.NotAfter - now;
        var data = new Dictionary<string, object> { ["spiffeId"] = current.Id.Value, ["notAfter"] = current.NotAfter, ["serial"] = current.SerialNumber };
        return Task.FromResult(left < current.Lifetime / 5
            ? HealthCheckResult.Degraded($"The workload certificate expires in {left.TotalSeconds:0} s and has not been renewed.", data: data)
            : HealthCheckResult.Healthy($"Certificate valid for {left.TotalSeconds:0} s more.", data));
    }
}

/// <summary>The last policy reload was applied (a rejected one leaves the previous policy in force: degraded, not down).</summary>
internal sealed class PolicyHealthCheck(PolicyWatcher policies) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var data = new Dictionary<string, object> { ["version"] = policies.Current.Version };
        var rejection = policies.LastRejection;
        return Task.FromResult(rejection.Count == 0
            ? HealthCheckResult.Healthy($"Policy {policies.Current.Version} in force.", data)
            : HealthCheckResult.Degraded($"The last policy change was rejected ({rejection.Count} error(s), first: {rejection[0]}); policy {policies.Current.Version} stays in force.", data: data));
    }
}

/// <summary>Discovery answers: a destination whose discovery fails and has nothing known to serve is a problem.</summary>
internal sealed class DiscoveryHealthCheck(MeshEndpointRegistry registry) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var failing = registry.Failing();
        return Task.FromResult(failing.Count == 0
            ? HealthCheckResult.Healthy("Discovery answers for every destination called so far.")
            : HealthCheckResult.Degraded($"Discovery is failing for: {string.Join(", ", failing)}."));
    }
}

/// <summary>Readiness turns off as soon as the host starts stopping, so orchestrators stop sending traffic during the drain.</summary>
internal sealed class DrainHealthCheck(IHostApplicationLifetime lifetime) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(lifetime.ApplicationStopping.IsCancellationRequested
            ? HealthCheckResult.Unhealthy("The service is stopping (draining).")
            : HealthCheckResult.Healthy());
}
