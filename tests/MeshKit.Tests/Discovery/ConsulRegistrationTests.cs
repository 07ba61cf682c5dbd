using System.Runtime.CompilerServices;
using MeshKit.Consul;
using MeshKit.Testing;
using MeshKit.Testing.Consul;
using MeshKit.Tests.Identity;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using static MeshKit.Tests.Discovery.ConsulMeshApps;

namespace MeshKit.Tests.Discovery;

/// <summary>Each instance registers itself in Consul, keeps its check honest, and leaves gracefully.</summary>
[Trait("Area", "Discovery")]
public sealed class ConsulRegistrationTests(MeshTestBed bed) : IClassFixture<MeshTestBed>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Graceful_shutdown_fails_the_check_deregisters_and_then_waits_for_the_call_in_flight()
    {
        await using var consul = await ConsulDouble.StartAsync();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var orders = await ConsulServiceApp.StartAsync(bed, consul, "orders", "a", handler: async http =>
        {
            entered.TrySetResult();
            await release.Task;
            await http.Response.WriteAsync("finished");
        });
        await Eventually.WaitAsync(() => consul.CheckStatus(orders.CheckId) == "passing", Deadline, "orders-a to register and pass");
        await using var frontend = await StartCallerAsync(bed, consul);
        var call = frontend.MeshClient().GetStringAsync("/slow", Ct);
        await entered.Task.WaitAsync(Deadline, Ct);

        var stop = orders.Host.StopAsync();

        // It leaves discovery while its call is still being served...
        await Eventually.WaitAsync(() => !consul.HasService(orders.ServiceId), Deadline, "orders-a to deregister");
        await Eventually.WaitAsync(async () => (await frontend.EndpointsAsync()).Endpoints.IsEmpty, Deadline, "the frontend to drop orders-a");
        await Eventually.WaitAsync(() => orders.Host.Logs.Entries.Any(e => e.EventId.Id == 3113), Deadline, "the drain to start");
        Assert.False(call.IsCompleted, "the call in flight must not be cut");
        Assert.False(stop.IsCompleted, "the stop waits for the call in flight");

        // ...with its check marked critical before the deregistration.
        var own = consul.Requests.Where(r => r.Path.EndsWith(orders.ServiceId, StringComparison.Ordinal)).ToList();
        var deregister = own.FindIndex(r => r.Path == "/v1/agent/service/deregister/" + orders.ServiceId);
        Assert.True(deregister > 0);
        Assert.Equal("/v1/agent/check/update/" + orders.CheckId, own[deregister - 1].Path);

        // Once the call finishes, the stop completes and the server closes its connections.
        release.SetResult();
        Assert.Equal("finished", await call.WaitAsync(Deadline, Ct));
        await stop.WaitAsync(Deadline, Ct);
        var events = orders.Host.Logs.Entries.Select(e => e.EventId.Id).ToList();
        Assert.True(events.IndexOf(3113) < events.IndexOf(3114), "drained after the drain started");
        Assert.Contains(orders.Host.Logs.Entries, e => e.EventId.Id == 3114 && e.Message.Contains("the 1 request(s)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_unhealthy_host_turns_its_check_critical_and_leaves_discovery_until_it_is_healthy_again()
    {
        await using var consul = await ConsulDouble.StartAsync();
        var healthy = new StrongBox<bool>(true);
        await using var orders = await ConsulServiceApp.StartAsync(bed, consul, "orders", "a",
            configureServices: services => services.AddHealthChecks().AddCheck("database", () =>
                Volatile.Read(ref healthy.Value) ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy("login with password=hunter2 refused")));
        await Eventually.WaitAsync(() => consul.CheckStatus(orders.CheckId) == "passing", Deadline, "orders-a to register and pass");
        await using var frontend = await StartCallerAsync(bed, consul);
        Assert.Single((await frontend.EndpointsAsync()).Endpoints);

        Volatile.Write(ref healthy.Value, false);
        await Eventually.WaitAsync(() => consul.CheckStatus(orders.CheckId) == "critical", Deadline, "the check to turn critical");
        await Eventually.WaitAsync(async () => (await frontend.EndpointsAsync()).Endpoints.IsEmpty, Deadline, "orders-a to leave discovery");

        // The Consul UI shows which health check failed, never what it said.
        using var consulClient = ConsulMeshApps.Client(consul);
        var entry = Assert.Single((await consulClient.GetHealthServiceAsync("orders", new ConsulHealthQuery { PassingOnly = false }, Ct)).Value);
        var output = entry.Checks.Single(c => c.Id == orders.CheckId).Output;
        Assert.Contains("database", output, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", output, StringComparison.Ordinal);

        Volatile.Write(ref healthy.Value, true);
        await Eventually.WaitAsync(() => consul.CheckStatus(orders.CheckId) == "passing", Deadline, "the check to pass again");
        await Eventually.WaitAsync(async () => (await frontend.EndpointsAsync()).Endpoints.Length == 1, Deadline, "orders-a to return to discovery");
    }

    [Fact]
    public async Task A_workload_without_a_mesh_endpoint_registers_nothing()
    {
        await using var consul = await ConsulDouble.StartAsync();
        await using var frontend = await StartCallerAsync(bed, consul);

        Assert.Contains(frontend.Logs.Entries, e => e.EventId.Id == 3110 && e.Message.Contains("no mesh endpoint", StringComparison.Ordinal));
        Assert.DoesNotContain(consul.Requests, r => r.Path.StartsWith("/v1/agent/", StringComparison.Ordinal));
    }
}
