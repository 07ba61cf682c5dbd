using Microsoft.Extensions.Hosting;

namespace MeshKit.Policy;

/// <summary>Loads the policy before the host starts, so an invalid policy stops startup with every error instead of failing the first call.</summary>
internal sealed class PolicyStartupCheck(IServiceProvider services) : IHostedLifecycleService
{
    public Task StartingAsync(CancellationToken cancellationToken)
    {
        _ = (PolicyWatcher)services.GetService(typeof(PolicyWatcher))!;
        return Task.CompletedTask;
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
