using System.Diagnostics;
using System.Net;
using MeshKit.Testing;
using MeshKit.Tests.Identity;
using MeshKit.Transport;
using Microsoft.AspNetCore.Http;

namespace MeshKit.Tests.Traffic;

[Trait("Area", "Traffic")]
[Collection(LoadCollection.Name)]
public sealed class RoutingTests(MeshTestBed bed) : IClassFixture<MeshTestBed>
{
    private static Dictionary<string, string?> Split(int v1, int v2) => new()
    {
        ["Mesh:Policy:Destinations:orders:Routes:0:Name"] = "canary",
        ["Mesh:Policy:Destinations:orders:Routes:0:Split:v1"] = v1.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Mesh:Policy:Destinations:orders:Routes:0:Split:v2"] = v2.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    [Fact]
    public async Task A_90_10_split_over_10000_requests_lands_within_one_and_a_half_points()
    {
        await using var v1 = await Upstream.StartAsync(bed, "orders", "v1");
        await using var v2 = await Upstream.StartAsync(bed, "orders", "v2");
        await using var caller = await Caller.StartAsync(bed, "orders", [v1, v2], Split(90, 10));

        var (succeeded, failed, errors) = await Caller.LoadAsync(caller.Client("orders"), 10_000, 16);

        Assert.True(failed == 0, string.Join(" | ", errors));
        Assert.Equal(10_000, succeeded);
        var share = 100.0 * v2.Served / (v1.Served + v2.Served);
        Assert.InRange(share, 8.5, 11.5);
    }

    [Fact]
    public async Task The_subset_header_sends_every_request_to_v2()
    {
        await using var v1 = await Upstream.StartAsync(bed, "orders", "v1");
        await using var v2 = await Upstream.StartAsync(bed, "orders", "v2");
        await using var caller = await Caller.StartAsync(bed, "orders", [v1, v2], Split(100, 0));

        var (succeeded, _, _) = await Caller.LoadAsync(caller.Client("orders"), 200, 4, () =>
        {
            var request = new HttpRequestMessage(HttpMethod.Get, "/");
            request.Headers.Add("x-mesh-subset", "v2");
            return request;
        });

        Assert.Equal(200, succeeded);
        Assert.Equal(200, v2.Served);
        Assert.Equal(0, v1.Served);
    }

    [Fact]
    public async Task Routes_match_on_path_method_and_header_in_order()
    {
        await using var v1 = await Upstream.StartAsync(bed, "orders", "v1");
        await using var v2 = await Upstream.StartAsync(bed, "orders", "v2");
        await using var caller = await Caller.StartAsync(bed, "orders", [v1, v2], new Dictionary<string, string?>
        {
            // Beta testers get v2 on the API; everyone else's API calls go to v1; anything else to v2.
            ["Mesh:Policy:Destinations:orders:Routes:0:Name"] = "beta",
            ["Mesh:Policy:Destinations:orders:Routes:0:Match:Path:Prefix"] = "/api",
            ["Mesh:Policy:Destinations:orders:Routes:0:Match:Headers:x-beta:Exact"] = "yes",
            ["Mesh:Policy:Destinations:orders:Routes:0:Split:v2"] = "1",
            ["Mesh:Policy:Destinations:orders:Routes:1:Name"] = "api",
            ["Mesh:Policy:Destinations:orders:Routes:1:Match:Path"] = "/api",
            ["Mesh:Policy:Destinations:orders:Routes:1:Match:Methods:0"] = "GET",
            ["Mesh:Policy:Destinations:orders:Routes:1:Split:v1"] = "1",
            ["Mesh:Policy:Destinations:orders:Routes:2:Name"] = "rest",
            ["Mesh:Policy:Destinations:orders:Routes:2:Split:v2"] = "1",
        });
        var client = caller.Client("orders");

        async Task<string> Get(string path, bool beta = false, HttpMethod? method = null)
        {
            using var request = new HttpRequestMessage(method ?? HttpMethod.Get, path);
            if (beta)
            {
                request.Headers.Add("x-beta", "yes");
            }

            using var response = await client.SendAsync(request, TestContext.Current.CancellationToken);
            return await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        }

        Assert.Equal("v2", await Get("/api/orders", beta: true));
        Assert.Equal("v1", await Get("/api/orders"));
        Assert.Equal("v1", await Get("/api"));
        Assert.Equal("v2", await Get("/apix"));
        Assert.Equal("v2", await Get("/api/orders", method: HttpMethod.Delete));
        Assert.Equal("v2", await Get("/health"));
    }

    [Fact]
    public async Task An_unknown_subset_fails_with_an_error_naming_destination_route_and_subset()
    {
        await using var v1 = await Upstream.StartAsync(bed, "orders", "v1");
        await using var caller = await Caller.StartAsync(bed, "orders", [v1], new Dictionary<string, string?>
        {
            ["Mesh:Policy:Destinations:orders:Routes:0:Name"] = "canary",
            ["Mesh:Policy:Destinations:orders:Routes:0:Split:v3"] = "100",
        });

        var error = await Assert.ThrowsAsync<MeshCallException>(() => caller.Client("orders").GetStringAsync("/", TestContext.Current.CancellationToken));
        Assert.Equal("no_endpoints_in_subset", error.Reason);
        Assert.Contains("'orders'", error.Message, StringComparison.Ordinal);
        Assert.Contains("route 'canary'", error.Message, StringComparison.Ordinal);
        Assert.Contains("version=v3", error.Message, StringComparison.Ordinal);
        Assert.Contains("version = v1", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_mirror_copy_arrives_at_the_mirror_subset_and_a_slow_mirror_does_not_slow_the_caller()
    {
        var mirrored = 0;
        await using var v1 = await Upstream.StartAsync(bed, "orders", "v1");
        await using var shadow = await Upstream.StartAsync(bed, "orders", "shadow", async (http, me) =>
        {
            if (http.Request.Headers["x-mesh-mirror"] == "1")
            {
                Interlocked.Increment(ref mirrored);
            }

            // A slow mirror: if the caller waited for it, every call would take a second.
            await Task.Delay(TimeSpan.FromSeconds(1), http.RequestAborted);
            await http.Response.WriteAsync("shadow");
        });
        await using var caller = await Caller.StartAsync(bed, "orders", [v1, shadow], new Dictionary<string, string?>
        {
            ["Mesh:Policy:Destinations:orders:Routes:0:Split:v1"] = "100",
            ["Mesh:Policy:Destinations:orders:Routes:0:Mirror:Subset"] = "shadow",
        });
        var client = caller.Client("orders");
        Assert.Equal("v1", await client.GetStringAsync("/warm-up", TestContext.Current.CancellationToken));

        var stopwatch = Stopwatch.StartNew();
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal("v1", await client.GetStringAsync($"/orders/{i}", TestContext.Current.CancellationToken));
        }

        // Ten sequential calls with a 1 s mirror would take 10 s if the mirror were on the caller's path.
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(3), $"ten calls took {stopwatch.Elapsed}");
        await Eventually.WaitAsync(() => Volatile.Read(ref mirrored) >= 11, TimeSpan.FromSeconds(10), "the mirror copies to arrive");
        Assert.Equal(11, v1.Served);
    }

    [Fact]
    public async Task Fault_injection_aborts_and_delays_the_configured_share_of_requests()
    {
        await using var v1 = await Upstream.StartAsync(bed, "orders", "v1");
        await using var caller = await Caller.StartAsync(bed, "orders", [v1], new Dictionary<string, string?>
        {
            ["Mesh:Policy:Destinations:orders:Routes:0:Match:Path"] = "/abort",
            ["Mesh:Policy:Destinations:orders:Routes:0:Fault:Abort:Percent"] = "30",
            ["Mesh:Policy:Destinations:orders:Routes:0:Fault:Abort:Status"] = "503",
            ["Mesh:Policy:Destinations:orders:Routes:1:Match:Path"] = "/delay",
            ["Mesh:Policy:Destinations:orders:Routes:1:Fault:Delay:Percent"] = "50",
            ["Mesh:Policy:Destinations:orders:Routes:1:Fault:Delay:Duration"] = "00:00:00.200",
        });
        var client = caller.Client("orders");

        var aborted = 0;
        for (var i = 0; i < 1000; i++)
        {
            using var response = await client.GetAsync("/abort", TestContext.Current.CancellationToken);
            if (response.StatusCode == HttpStatusCode.ServiceUnavailable)
            {
                Assert.True(response.Headers.Contains("x-mesh-fault"));
                aborted++;
            }
        }

        // Injected aborts are not retried (they are the fault being tested), and never reach the upstream.
        Assert.InRange(aborted, 240, 360);
        Assert.Equal(1000 - aborted, v1.Served);

        var delayed = 0;
        for (var i = 0; i < 40; i++)
        {
            var stopwatch = Stopwatch.StartNew();
            await client.GetStringAsync("/delay", TestContext.Current.CancellationToken);
            if (stopwatch.Elapsed >= TimeSpan.FromMilliseconds(190))
            {
                delayed++;
            }
        }

        Assert.InRange(delayed, 8, 32);
    }
}
