using MeshKit.Identity;
using MeshKit.Server;
using MeshKit.Testing;
using MeshKit.Tests.Identity;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MeshKit.Tests.Hosting;

[Trait("Area", "Hosting")]
public sealed class GenericHostTests(MeshTestBed bed) : IClassFixture<MeshTestBed>
{
    [Fact]
    public async Task A_worker_on_a_generic_host_without_Kestrel_joins_the_mesh_and_calls_a_mesh_service()
    {
        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token, map: app =>
            app.MapGet("/whoami", (HttpContext http) => http.Features.Get<IMeshPeerFeature>()?.SpiffeId.Value ?? "nobody"));

        var logs = new TestLogSink();
        var builder = CreateWorkerBuilder(orders.AsStaticEndpoint("orders"), logs);
        builder.Services.AddMeshClient("orders");
        builder.Services.AddSingleton<Worker>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<Worker>());

        using var host = builder.Build();
        await host.StartAsync(TestContext.Current.CancellationToken);
        try
        {
            var worker = host.Services.GetRequiredService<Worker>();
            var answer = await worker.Answer.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
            Assert.Equal($"spiffe://{ControlPlaneHost.TrustDomain}/ns/default/svc/frontend", answer);

            // It holds its own certificate, and no mesh endpoint was opened.
            Assert.Equal("frontend", host.Services.GetRequiredService<WorkloadIdentitySource>().Current!.Id.Service);
            Assert.False(host.Services.GetRequiredService<MeshEndpointInfo>().IsConfigured);
            Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Warning);
        }
        finally
        {
            await host.StopAsync(TestContext.Current.CancellationToken);
        }
    }

    [Fact]
    public async Task A_generic_host_that_asks_for_a_mesh_endpoint_fails_at_start_naming_the_setting()
    {
        var logs = new TestLogSink();
        var builder = CreateWorkerBuilder([new("Mesh:Endpoint:Port", "0")], logs);
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => host.StartAsync(TestContext.Current.CancellationToken));
        Assert.Contains("Mesh:Endpoint:Port", error.Message, StringComparison.Ordinal);
        Assert.Contains("WebApplication.CreateBuilder", error.Message, StringComparison.Ordinal);

        // Stopped before it asked the control service for a certificate.
        Assert.DoesNotContain(logs.Entries, e => e.EventId.Id == 2001);
    }

    /// <summary>Host.CreateApplicationBuilder: no web host, no server, no request pipeline.</summary>
    private HostApplicationBuilder CreateWorkerBuilder(IEnumerable<KeyValuePair<string, string?>> settings, TestLogSink logs)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>(settings)
        {
            ["Mesh:Service:Name"] = "frontend",
            ["Mesh:TrustDomain"] = ControlPlaneHost.TrustDomain,
            ["Mesh:ControlPlane:Address"] = bed.ControlPlane.BaseAddress.ToString(),
            ["Mesh:ControlPlane:JoinToken"] = MeshTestBed.Token,
            ["Mesh:ControlPlane:TrustBundlePath"] = bed.ControlPlane.TrustBundlePath,
            ["Mesh:ControlPlane:StartupTimeout"] = "00:00:10",
            ["Mesh:ControlPlane:WatchWait"] = "00:00:01",
        });
        builder.Logging.AddProvider(logs);
        builder.AddMesh();
        return builder;
    }

    /// <summary>A background worker that calls orders once through its mesh client.</summary>
    private sealed class Worker(IHttpClientFactory clients) : BackgroundService
    {
        public TaskCompletionSource<string> Answer { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        protected override async Task ExecuteAsync(CancellationToken stoppingToken)
        {
            try
            {
                Answer.TrySetResult(await clients.CreateClient("orders").GetStringAsync("/whoami", stoppingToken));
            }
            catch (Exception ex)
            {
                Answer.TrySetException(ex);
            }
        }
    }
}
