using System.Net;
using MeshKit.Balancing;
using MeshKit.Testing;
using MeshKit.Tests.Identity;
using MeshKit.Transport;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Http.Resilience;

namespace MeshKit.Tests.Traffic;

[Trait("Area", "Traffic")]
[Collection(LoadCollection.Name)]
public sealed class ResilienceTests(MeshTestBed bed) : IClassFixture<MeshTestBed>
{
    private int _chainsBuilt;

    private sealed class PassThroughHandler : DelegatingHandler;

    [Fact]
    public async Task One_of_three_instances_stopped_under_load_keeps_success_at_least_99_9_percent()
    {
        await using var a = await Upstream.StartAsync(bed, "orders", "v1");
        await using var b = await Upstream.StartAsync(bed, "orders", "v1");
        var c = await Upstream.StartAsync(bed, "orders", "v1");
        await using var caller = await Caller.StartAsync(bed, "orders", [a, b, c]);
        var client = caller.Client("orders");

        var load = Caller.LoadAsync(client, 6000, 8);
        await Eventually.WaitAsync(() => c.Served > 300, TimeSpan.FromSeconds(10), "load to reach the third instance");
        await c.DisposeAsync();
        var (succeeded, failed, errors) = await load;

        var rate = (double)succeeded / (succeeded + failed);
        Assert.True(rate >= 0.999, $"success {rate:P3}: {failed} failed: {string.Join(" | ", errors)}");
        Assert.True(caller.Metrics.Sum("mesh.client.retries") > 0, "the stopped instance's failures should have been retried");
    }

    [Fact]
    public async Task The_retry_budget_caps_retries_at_twenty_percent_against_a_dependency_that_always_fails()
    {
        await using var broken = await Upstream.StartAsync(bed, "orders", "v1", (http, _) =>
        {
            http.Response.StatusCode = 503;
            return Task.CompletedTask;
        });
        await using var caller = await Caller.StartAsync(bed, "orders", [broken], new Dictionary<string, string?>
        {
            ["Mesh:Policy:Defaults:OutlierDetection:Enabled"] = "false",
            ["Mesh:Policy:Defaults:Retry:MaxRetries"] = "3",
            ["Mesh:Policy:Defaults:Retry:BaseDelay"] = "00:00:00",
            ["Mesh:Policy:Defaults:Retry:MaxDelay"] = "00:00:00",
        });

        const int Requests = 1500;
        var (_, failed, _) = await Caller.LoadAsync(caller.Client("orders"), Requests, 8);

        Assert.Equal(Requests, failed);
        var extra = (double)(broken.Served - Requests) / Requests;
        Assert.True(extra <= 0.20, $"retries added {extra:P1} extra requests ({broken.Served} served for {Requests} calls)");
        Assert.True(extra > 0.05, $"the budget should still allow some retries, saw {extra:P1}");
        Assert.True(caller.Metrics.Sum("mesh.client.retry_budget.exhausted") > 0);
    }

    [Fact]
    public async Task A_slow_endpoint_gets_fewer_requests_than_the_fast_ones()
    {
        await using var fast1 = await Upstream.StartAsync(bed, "orders", "v1");
        await using var fast2 = await Upstream.StartAsync(bed, "orders", "v1");
        await using var slow = await Upstream.StartAsync(bed, "orders", "v1", async (http, me) =>
        {
            await Task.Delay(50, http.RequestAborted);
            await http.Response.WriteAsync("slow");
        });
        await using var caller = await Caller.StartAsync(bed, "orders", [fast1, fast2, slow]);

        await Caller.LoadAsync(caller.Client("orders"), 1500, 8);

        Assert.True(slow.Served * 2 < fast1.Served && slow.Served * 2 < fast2.Served, $"slow {slow.Served}, fast {fast1.Served} and {fast2.Served}");
    }

    [Fact]
    public async Task An_endpoint_that_fails_fast_with_503_also_gets_fewer_requests()
    {
        await using var good1 = await Upstream.StartAsync(bed, "orders", "v1");
        await using var good2 = await Upstream.StartAsync(bed, "orders", "v1");
        await using var failing = await Upstream.StartAsync(bed, "orders", "v1", (http, _) =>
        {
            http.Response.StatusCode = 503;
            return Task.CompletedTask;
        });

        // Without ejection, only the balancer's failure penalty keeps traffic away from the fast-failing endpoint.
        await using var caller = await Caller.StartAsync(bed, "orders", [good1, good2, failing], new Dictionary<string, string?>
        {
            ["Mesh:Policy:Defaults:OutlierDetection:Enabled"] = "false",
            ["Mesh:Policy:Defaults:Retry:MaxRetries"] = "0",
        });

        await Caller.LoadAsync(caller.Client("orders"), 1500, 8);

        Assert.True(failing.Served * 2 < good1.Served && failing.Served * 2 < good2.Served, $"failing {failing.Served}, good {good1.Served} and {good2.Served}");
    }

    [Fact]
    public async Task Ejection_state_survives_handler_recycling()
    {
        await using var good = await Upstream.StartAsync(bed, "orders", "v1");
        await using var bad = await Upstream.StartAsync(bed, "orders", "v1", (http, _) =>
        {
            http.Response.StatusCode = 500;
            return Task.CompletedTask;
        });
        await using var caller = await Caller.StartAsync(bed, "orders", [good, bad], new Dictionary<string, string?>
        {
            ["Mesh:Policy:Defaults:OutlierDetection:ConsecutiveFailures"] = "3",
            ["Mesh:Policy:Defaults:OutlierDetection:BaseEjectionTime"] = "00:01:00",
            ["Mesh:Policy:Defaults:LoadBalancer"] = "RoundRobin",
        }, services => services.AddHttpClient("orders").SetHandlerLifetime(TimeSpan.FromSeconds(1)).AddHttpMessageHandler(() =>
        {
            // Counts handler chains the factory builds: a new one means the old chain was recycled.
            Interlocked.Increment(ref _chainsBuilt);
            return new PassThroughHandler();
        }));
        var factory = caller.Services.GetRequiredService<IHttpClientFactory>();

        await Caller.LoadAsync(factory.CreateClient("orders"), 50, 2);
        var states = caller.Services.GetRequiredService<EndpointStateRegistry>();
        var badState = states.Find("orders", $"127.0.0.1:{bad.Host.MeshEndPoint.Port}");
        Assert.NotNull(badState);
        Assert.True(badState.IsEjected(caller.Services.GetRequiredService<TimeProvider>().GetTimestamp()));
        var servedBefore = bad.Served;

        // Let the factory's 1 s handler lifetime pass and recycle the handlers; the ejection must still hold.
        var chainsBefore = Volatile.Read(ref _chainsBuilt);
        await Eventually.WaitAsync(async () =>
        {
            await Caller.LoadAsync(factory.CreateClient("orders"), 10, 1);
            return Volatile.Read(ref _chainsBuilt) > chainsBefore;
        }, TimeSpan.FromSeconds(10), "the factory to recycle the handlers", TimeSpan.FromMilliseconds(300));

        var (succeeded, failed, _) = await Caller.LoadAsync(factory.CreateClient("orders"), 100, 2);
        Assert.Equal(100, succeeded);
        Assert.Equal(0, failed);
        Assert.Equal(servedBefore, bad.Served);
        Assert.True(caller.Metrics.Sum("mesh.client.ejections") >= 1);
    }

    [Fact]
    public async Task The_concurrency_limit_rejects_the_excess_with_a_clear_error()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var arrived = 0;
        await using var slow = await Upstream.StartAsync(bed, "orders", "v1", async (http, _) =>
        {
            Interlocked.Increment(ref arrived);
            await release.Task.WaitAsync(http.RequestAborted);
            await http.Response.WriteAsync("done");
        });
        await using var caller = await Caller.StartAsync(bed, "orders", [slow], new Dictionary<string, string?>
        {
            ["Mesh:Policy:Destinations:orders:Concurrency:MaxRequests"] = "4",
            ["Mesh:Policy:Destinations:orders:Concurrency:MaxQueue"] = "0",
        });
        var client = caller.Client("orders");

        var held = Enumerable.Range(0, 4).Select(_ => client.GetStringAsync("/", TestContext.Current.CancellationToken)).ToArray();
        await Eventually.WaitAsync(() => Volatile.Read(ref arrived) == 4, TimeSpan.FromSeconds(10), "four calls to be under way");

        var error = await Assert.ThrowsAsync<MeshCallException>(() => client.GetStringAsync("/", TestContext.Current.CancellationToken));
        Assert.Equal("concurrency_limit", error.Reason);
        Assert.Contains("Mesh:Policy:Destinations:orders:Concurrency", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, caller.Metrics.Sum("mesh.client.concurrency.rejections"));

        release.SetResult();
        Assert.All(await Task.WhenAll(held), body => Assert.Equal("done", body));
    }

    [Fact]
    public async Task A_propagated_deadline_shortens_the_downstream_calls_timeout()
    {
        // inventory hangs; orders calls it with a generous 20 s timeout of its own; frontend gives the whole chain 1 s.
        await using var inventory = await Upstream.StartAsync(bed, "inventory", "v1", async (http, _) =>
        {
            await Task.Delay(TimeSpan.FromSeconds(30), http.RequestAborted);
        });
        string? ordersSaw = null;
        TimeSpan ordersWaited = default;
        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token,
            settings: new Dictionary<string, string?>(inventory.Host.AsStaticEndpoint("inventory", 0, "v1"))
            {
                ["Mesh:Policy:Destinations:inventory:Timeout"] = "00:00:20",
                ["Mesh:Policy:Destinations:inventory:AttemptTimeout"] = "00:00:20",
            },
            configureServices: s => s.AddMeshClient("inventory"),
            map: app => app.MapGet("/", async (HttpContext http, IHttpClientFactory clients) =>
            {
                ordersSaw = http.Request.Headers[MeshKit.Deadlines.MeshDeadline.HeaderName];
                var stopwatch = System.Diagnostics.Stopwatch.StartNew();
                try
                {
                    // Not tied to RequestAborted: only the propagated deadline can cut this call short.
                    await clients.CreateClient("inventory").GetStringAsync("/", CancellationToken.None);
                    return Results.Ok();
                }
                catch (MeshCallException ex) when (ex.Reason == "timeout")
                {
                    ordersWaited = stopwatch.Elapsed;
                    return Results.StatusCode(504);
                }
            }));
        await using var frontend = await Caller.StartAsync(bed, "orders", [], new Dictionary<string, string?>(orders.AsStaticEndpoint("orders"))
        {
            ["Mesh:Policy:Destinations:orders:Timeout"] = "00:00:01",
            ["Mesh:Policy:Destinations:orders:AttemptTimeout"] = "00:00:01",
            ["Mesh:Policy:Destinations:orders:Retry:MaxRetries"] = "0",
        });

        await Assert.ThrowsAsync<MeshCallException>(() => frontend.Client("orders").GetStringAsync("/", TestContext.Current.CancellationToken));

        Assert.NotNull(ordersSaw);
        Assert.InRange(int.Parse(ordersSaw!, System.Globalization.CultureInfo.InvariantCulture), 1, 1000);
        await Eventually.WaitAsync(() => ordersWaited != default, TimeSpan.FromSeconds(5), "orders' own call to time out");
        Assert.True(ordersWaited < TimeSpan.FromSeconds(2), $"orders waited {ordersWaited} for inventory; its 20 s timeout should have been capped by the 1 s deadline");
    }

    [Fact]
    public async Task With_the_stock_Aspire_ServiceDefaults_a_failing_call_is_attempted_no_more_than_the_policy_allows()
    {
        await using var broken = await Upstream.StartAsync(bed, "orders", "v1", (http, _) =>
        {
            http.Response.StatusCode = 500;
            return Task.CompletedTask;
        });
        await using var caller = await Caller.StartAsync(bed, "orders", [broken], new Dictionary<string, string?>
        {
            ["Mesh:Policy:Defaults:Retry:MaxRetries"] = "2",
            ["Mesh:Policy:Defaults:Retry:BaseDelay"] = "00:00:00",
        }, services =>
        {
            // The stock ServiceDefaults template: every client gets service discovery and the standard resilience handler.
            services.AddServiceDiscovery();
            services.ConfigureHttpClientDefaults(http =>
            {
                http.AddStandardResilienceHandler();
                http.AddServiceDiscovery();
            });
        });

        using var response = await caller.Client("orders").GetAsync("/", TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Equal(3, broken.Served);
    }
}
