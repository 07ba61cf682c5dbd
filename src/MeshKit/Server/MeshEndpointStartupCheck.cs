using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace MeshKit.Server;

/// <summary>
/// Stops the host before it starts when <c>Mesh:Endpoint:Port</c> asks for a mesh endpoint that nothing can serve: on a
/// generic host (<c>Host.CreateApplicationBuilder</c>, a worker) there is no Kestrel to bind it, and the workload would
/// otherwise run unreachable and unregistered without a word. A worker that only calls other services needs no port.
/// </summary>
internal sealed class MeshEndpointStartupCheck(IOptions<MeshOptions> options, IServiceProvider services) : IHostedLifecycleService
{
    public Task StartingAsync(CancellationToken cancellationToken)
    {
        if (options.Value.Endpoint.Port is { } port
            && services.GetService<IServiceProviderIsService>()?.IsService(typeof(IServer)) == false)
        {
            throw new InvalidOperationException(
                $"Mesh:Endpoint:Port is {port}, but this host has no web server to serve a mesh endpoint on (a generic host, such as "
                + "Host.CreateApplicationBuilder, runs no Kestrel). Remove Mesh:Endpoint:Port for a workload that only calls other "
                + "mesh services, or build the app with WebApplication.CreateBuilder to serve mesh calls.");
        }

        return Task.CompletedTask;
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
