using MeshKit.Consul;
using MeshKit.Discovery;
using MeshKit.Testing;
using MeshKit.Testing.Consul;
using MeshKit.Tests.Identity;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.ServiceDiscovery;
using static MeshKit.Tests.Discovery.ConsulMeshApps;

namespace MeshKit.Tests.Discovery;

/// <summary>
/// Static stability: a Consul outage leaves calls working on the last known endpoints, however long the caller sits idle.
/// The bed's certificates last a minute: what is under test is discovery, and with the usual 5 s certificates the half-minute
/// idle needed a dozen renewals, one of which expired unrenewed twice in CI on a loaded machine.
/// </summary>
[Trait("Area", "Discovery")]
public sealed class ConsulOutageTests : IAsyncLifetime
{
    private readonly MeshTestBed bed = new() { CertificateLifetime = "00:01:00" };

    public ValueTask InitializeAsync() => bed.InitializeAsync();

    public ValueTask DisposeAsync() => bed.DisposeAsync();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task While_Consul_is_down_an_idle_caller_is_served_the_last_known_endpoints_and_updates_resume_when_it_is_back()
    {
        await using var consul = await ConsulDouble.StartAsync();
        await using var first = await ConsulServiceApp.StartAsync(bed, consul, "orders", "a");
        await Eventually.WaitAsync(() => consul.CheckStatus(first.CheckId) == "passing", Deadline, "orders-a to register and pass");
        await using var frontend = await StartCallerAsync(bed, consul);
        var client = frontend.MeshClient();
        Assert.Equal("a", await client.GetStringAsync("/", Ct));
        var resolver = frontend.Services.GetRequiredService<ServiceEndpointResolver>();
        Assert.Single((await resolver.GetEndpointsAsync("https://orders", Ct)).Endpoints);

        await consul.StopAsync();
        var watch = frontend.Services.GetRequiredService<ConsulServiceWatcher>().Watch("orders");
        await Eventually.WaitAsync(() => watch.ConsecutiveFailures > 0, Deadline, "the frontend to notice the outage");

        // Idle for longer than Microsoft.Extensions.ServiceDiscovery keeps an unused watcher (10-20 s): the duration is
        // what is under test here, not a wait for something to happen.
        await Task.Delay(TimeSpan.FromSeconds(30), Ct);

        Assert.Equal("a", await client.GetStringAsync("/", Ct));
        var lastKnown = Assert.Single((await resolver.GetEndpointsAsync("https://orders", Ct)).Endpoints);
        Assert.Equal(first.Host.MeshEndPoint, lastKnown.EndPoint);
        Assert.True(Staleness(frontend) >= 25, $"staleness {Staleness(frontend)} s after 30 s of outage");
        Assert.Contains(frontend.Logs.Entries, e => e.EventId.Id == 3101 && e.Level == LogLevel.Warning && e.Message.Contains("orders", StringComparison.Ordinal));
        Assert.Contains(frontend.Logs.Entries, e => e.EventId.Id == 4110 && e.Level == LogLevel.Warning);

        await consul.StartAsync();
        await using var second = await ConsulServiceApp.StartAsync(bed, consul, "orders", "b");
        await Eventually.WaitAsync(async () =>
        {
            try
            {
                return await client.GetStringAsync("/", Ct) == "b";
            }
            catch (HttpRequestException)
            {
                // orders-a may be critical for a moment: its TTL lapsed while Consul was down.
                return false;
            }
        }, Deadline, "updates to resume, so a call reaches orders-b");
        await Eventually.WaitAsync(() => Staleness(frontend) == 0, Deadline, "the staleness to return to 0");
    }

    private static double Staleness(MeshAppHost host)
    {
        host.Metrics.Collect();
        return host.Metrics.Points.Last(p => p.Instrument == ConsulEndpointProviderFactory.StalenessInstrument
            && Equals(p.Tags.GetValueOrDefault("mesh.destination.service"), "orders")).Value;
    }
}
