using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using MeshKit.Testing;
using MeshKit.Tests.Identity;
using MeshKit.Tests.Traffic;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Trace;

namespace MeshKit.Tests.Telemetry;

[Trait("Area", "Observability")]
public sealed class TracingTests(MeshTestBed bed) : IClassFixture<MeshTestBed>
{
    [Fact]
    public async Task One_request_through_three_hosts_yields_one_trace_whose_spans_carry_the_mesh_attributes()
    {
        var exported = new ConcurrentQueue<Activity>();
        await using var inventory = await MeshAppHost.StartAsync(bed.ControlPlane, "inventory", MeshTestBed.Token,
            settings: new Dictionary<string, string?> { ["Mesh:Service:Version"] = "v1" },
            map: app => app.MapGet("/stock", () => "42"));
        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token,
            settings: new Dictionary<string, string?>(inventory.AsStaticEndpoint("inventory", 0, "v1")),
            configureServices: s => s.AddMeshClient("inventory"),
            map: app => app.MapGet("/api/orders", async (IHttpClientFactory clients) => "stock=" + await clients.CreateClient("inventory").GetStringAsync("/stock")));
        await using var frontend = await Caller.StartAsync(bed, "orders", [], new Dictionary<string, string?>(orders.AsStaticEndpoint("orders", 0, "v2")),
            services => services.AddOpenTelemetry().WithTracing(tracing => tracing.AddAspNetCoreInstrumentation().AddHttpClientInstrumentation().AddInMemoryExporter(new ActivityQueueCollection(exported))));

        Assert.Equal("stock=42", await frontend.Client("orders").GetStringAsync("/api/orders", TestContext.Current.CancellationToken));

        // Other tests in this process also call "orders": find our trace by its server span's route, /api/orders.
        Activity? logical = null;
        await Eventually.WaitAsync(
            () =>
            {
                logical = exported.FirstOrDefault(a => a.Source.Name == "MeshKit" && a.DisplayName == "mesh orders"
                    && Spans(exported, a.TraceId).Count(s => s.Kind == ActivityKind.Server) >= 2
                    && Spans(exported, a.TraceId).Any(s => s.Kind == ActivityKind.Server && s.DisplayName == "GET /api/orders"));
                return logical is not null;
            },
            TimeSpan.FromSeconds(10),
            "the trace of the call through three hosts");
        var trace = logical!.TraceId;
        var spans = Spans(exported, trace);

        // frontend's logical span: destination, route, subset, outcome.
        Assert.Equal("orders", logical.GetTagItem("mesh.destination.service"));
        Assert.Equal("default", logical.GetTagItem("mesh.route"));
        Assert.Equal("success", logical.GetTagItem("mesh.outcome"));
        Assert.Equal(1, logical.GetTagItem("mesh.attempts"));

        // Its attempt span (.NET's HttpClient span) is its child and names the endpoint chosen.
        var attempt = Assert.Single(spans, a => a.Kind == ActivityKind.Client && a.ParentSpanId == logical.SpanId);
        Assert.Equal($"127.0.0.1:{orders.MeshEndPoint.Port}", attempt.GetTagItem("mesh.endpoint"));
        Assert.Equal(0, attempt.GetTagItem("mesh.attempt"));
        Assert.Equal("127.0.0.1", attempt.GetTagItem("network.peer.address"));
        Assert.Equal(orders.MeshEndPoint.Port, attempt.GetTagItem("network.peer.port"));

        // orders' server span is the attempt's child and carries the caller's SPIFFE ID and the authorization decision.
        var ordersServer = Assert.Single(spans, a => a.Kind == ActivityKind.Server && a.ParentSpanId == attempt.SpanId);
        Assert.Equal($"spiffe://{ControlPlaneHost.TrustDomain}/ns/default/svc/frontend", ordersServer.GetTagItem("mesh.caller.spiffe_id"));

        // ... and the chain continues: orders' own logical call to inventory, and inventory's server span with caller orders.
        var inner = Assert.Single(spans, a => a.Source.Name == "MeshKit" && a.DisplayName == "mesh inventory");
        Assert.Equal(ordersServer.SpanId, inner.ParentSpanId);
        var inventoryServer = Assert.Single(spans, a => a.Kind == ActivityKind.Server && a.GetTagItem("mesh.caller.service") as string == "orders");
        Assert.Equal(trace, inventoryServer.TraceId);
    }

    [Fact]
    public async Task A_retried_call_shows_two_attempt_spans_under_one_logical_span()
    {
        var exported = new ConcurrentQueue<Activity>();
        var calls = 0;
        await using var flaky = await Upstream.StartAsync(bed, "orders", "v1", async (http, _) =>
        {
            if (Interlocked.Increment(ref calls) == 1)
            {
                http.Response.StatusCode = 503;
                return;
            }

            await http.Response.WriteAsync("ok");
        });
        await using var frontend = await Caller.StartAsync(bed, "orders", [flaky], new Dictionary<string, string?> { ["Mesh:Policy:Defaults:Retry:BaseDelay"] = "00:00:00" },
            services => services.AddOpenTelemetry().WithTracing(tracing => tracing.AddAspNetCoreInstrumentation().AddHttpClientInstrumentation().AddInMemoryExporter(new ActivityQueueCollection(exported))));

        Assert.Equal("ok", await frontend.Client("orders").GetStringAsync("/retry-me", TestContext.Current.CancellationToken));

        var logical = await WaitForSpanAsync(exported, a => a.Source.Name == "MeshKit" && a.DisplayName == "mesh orders" && a.GetTagItem("mesh.attempts") is 2);
        var attempts = Spans(exported, logical.TraceId).Where(a => a.Kind == ActivityKind.Client && a.ParentSpanId == logical.SpanId).OrderBy(a => a.StartTimeUtc).ToList();
        Assert.Equal(2, attempts.Count);
        Assert.Equal(0, attempts[0].GetTagItem("mesh.attempt"));
        Assert.Equal(1, attempts[1].GetTagItem("mesh.attempt"));
        Assert.Equal("5xx", attempts[1].GetTagItem("mesh.retry.reason"));
        Assert.Equal("5xx", logical.GetTagItem("mesh.retry.reason"));
    }

    private static List<Activity> Spans(ConcurrentQueue<Activity> exported, ActivityTraceId trace) =>
        [.. exported.Where(a => a.TraceId == trace).DistinctBy(a => a.SpanId)];

    private static async Task<Activity> WaitForSpanAsync(ConcurrentQueue<Activity> exported, Func<Activity, bool> match)
    {
        Activity? found = null;
        await Eventually.WaitAsync(() => (found = exported.FirstOrDefault(match)) is not null, TimeSpan.FromSeconds(10), "the span to be exported");
        return found!;
    }
}

[Trait("Area", "Observability")]
public sealed class MetricsAndHealthTests(MeshTestBed bed) : IClassFixture<MeshTestBed>
{
    [Fact]
    public async Task Golden_metrics_are_recorded_under_the_documented_names_and_attributes()
    {
        await using var orders = await Upstream.StartAsync(bed, "orders", "v2");
        await using var frontend = await Caller.StartAsync(bed, "orders", [orders], new Dictionary<string, string?>
        {
            ["Mesh:Policy:Destinations:orders:Routes:0:Split:v2"] = "1",
        });

        await Caller.LoadAsync(frontend.Client("orders"), 10, 1);

        var client = frontend.Metrics.Points.Where(p => p.Instrument == "mesh.client.requests").ToList();
        Assert.Equal(10, client.Sum(p => p.Value));
        var tags = client[0].Tags;
        Assert.Equal("frontend", tags["mesh.source.service"]);
        Assert.Equal("orders", tags["mesh.destination.service"]);
        Assert.Equal("v2", tags["mesh.subset"]);
        Assert.Equal("2xx", tags["http.response.status_class"]);
        Assert.Equal(10, frontend.Metrics.Points.Count(p => p.Instrument == "mesh.client.request.duration"));

        await Eventually.WaitAsync(() => orders.Host.Metrics.Sum("mesh.server.requests") >= 10, TimeSpan.FromSeconds(5), "server metrics");
        var server = orders.Host.Metrics.Points.First(p => p.Instrument == "mesh.server.requests");
        Assert.Equal("frontend", server.Tags["mesh.source.service"]);
        Assert.Equal("orders", server.Tags["mesh.destination.service"]);
        Assert.Equal("v2", server.Tags["mesh.subset"]);
        Assert.Equal("/{**path}", server.Tags["http.route"]);

        // No endpoint address or raw path on request metrics (cardinality).
        Assert.DoesNotContain(client.Concat([server]).SelectMany(p => p.Tags.Values), v => v?.ToString()?.Contains("127.0.0.1", StringComparison.Ordinal) == true);

        frontend.Metrics.Collect();
        Assert.Contains(frontend.Metrics.Points, p => p.Instrument == "mesh.identity.certificate.expiry" && p.Value > 0);
        Assert.Contains(frontend.Metrics.Points, p => p.Instrument == "mesh.policy.version");
    }

    [Fact]
    public async Task The_readiness_endpoint_answers_on_the_public_port_without_a_mesh_certificate()
    {
        await using var orders = await Upstream.StartAsync(bed, "orders", "v1");
        using var probe = new HttpClient { BaseAddress = orders.Host.PublicAddress };
        using var response = await probe.GetAsync("/mesh/ready", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("Healthy", await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
    }
}
