using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using MeshKit.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Trace;

namespace MeshKit.Cli.Tests;

/// <summary>
/// Golden tests: a real frontend -> orders call through MeshKit apps, its spans collected, then <c>meshctl why</c> with the
/// same inputs. Route, subset and reason must equal the logical span's attributes, and the authorization decision and rule
/// the orders server span's.
/// </summary>
[Trait("Area", "Cli")]
public sealed class WhyGoldenTests
{
    private const string OrdersSettings = """
        { "Mesh": { "Authorization": { "DefaultAction": "Deny", "Rules": [
            { "Name": "no-admin", "Action": "Deny", "To": { "Paths": [ "/api/admin/*" ] } },
            { "Name": "frontend-reads-orders", "From": { "Services": [ "frontend" ] }, "To": { "Paths": [ "/api/orders" ], "Methods": [ "GET" ] } } ] } } }
        """;

    [Fact]
    public async Task Why_agrees_with_the_spans_for_a_header_override_a_single_weight_split_and_a_default_denial()
    {
        await using var bed = await CliBed.StartAsync();
        await using var mesh = await Mesh.StartAsync(bed, OrdersSettings, """
            "Routes": [
              { "Name": "beta", "Match": { "Path": "/api", "Headers": { "x-beta": "yes" } }, "Split": { "v2": 100 } },
              { "Name": "canary", "Match": { "Path": "/api", "Methods": [ "GET", "POST" ] }, "Split": { "v1": 90, "v2": 10 } } ]
            """);

        // The tester's header forces v2 on the canary route; the rule for frontend's reads allows it.
        var forced = await mesh.AgreeAsync(HttpMethod.Get, "/api/orders", [("x-mesh-subset", "v2")], expectedExit: 0);
        Assert.Equal(("canary", "v2", "header", "allow", "frontend-reads-orders"), forced);

        // x-beta matches the first route, whose split has one non-zero weight: deterministic.
        var beta = await mesh.AgreeAsync(HttpMethod.Get, "/api/orders", [("x-beta", "yes")], expectedExit: 0);
        Assert.Equal(("beta", "v2", "split", "allow", "frontend-reads-orders"), beta);

        // No rule allows frontend to POST: the default action denies it (403), and why exits 1.
        var denied = await mesh.AgreeAsync(HttpMethod.Post, "/api/orders", [("x-mesh-subset", "v1")], expectedExit: 1);
        Assert.Equal(("canary", "v1", "header", "deny", "default"), denied);
    }

    [Fact]
    public async Task Why_composes_central_policy_with_local_settings_as_the_runtime_does()
    {
        await using var bed = await CliBed.StartAsync();
        await using var mesh = await Mesh.StartAsync(bed, OrdersSettings, """
            "Routes": [ { "Name": "local-canary", "Split": { "v1": 50, "v2": 50 } } ]
            """);

        // Central documents replace frontend's orders routes and orders' authorization whole (docs/live-policy.md).
        var frontendCentral = bed.Write("frontend-central.json", """{ "Policy": { "Destinations": { "orders": { "Routes": [ { "Name": "central-split", "Split": { "v1": 100, "v2": 0 } } ] } } } }""");
        var ordersCentral = bed.Write("orders-central.json", """{ "Authorization": { "DefaultAction": "Allow", "Rules": [ { "Name": "no-writes", "Action": "Deny", "To": { "Methods": [ "POST", "DELETE" ] } } ] } }""");
        Assert.Equal(0, (await bed.RunAsync("policy", "apply", "frontend", frontendCentral)).ExitCode);
        Assert.Equal(0, (await bed.RunAsync("policy", "apply", "orders", ordersCentral)).ExitCode);
        await Eventually.WaitAsync(
            async () =>
            {
                var status = await bed.RunAsync("status", "--json", "--near-expiry", "0s");
                var workloads = status.Json.GetProperty("workloads").EnumerateArray().ToList();
                return status.ExitCode == 0 && workloads.Count == 3 && workloads.All(w => w.GetProperty("polled").GetBoolean() && w.GetProperty("centralPolicyVersion").GetString() is not null);
            },
            TimeSpan.FromSeconds(10),
            "every workload to run the stored central policy",
            TimeSpan.FromMilliseconds(200));

        var read = await mesh.AgreeAsync(HttpMethod.Get, "/api/orders", [], expectedExit: 0);
        Assert.Equal(("central-split", "v1", "split", "allow", "default"), read);

        var write = await mesh.AgreeAsync(HttpMethod.Post, "/api/orders", [], expectedExit: 1);
        Assert.Equal(("central-split", "v1", "split", "deny", "no-writes"), write);
    }

    [Fact]
    public async Task Why_shows_the_endpoint_the_callers_outlier_detection_ejected()
    {
        await using var bed = await CliBed.StartAsync();
        await using var mesh = await Mesh.StartAsync(bed, OrdersSettings, """
            "Routes": [ { "Name": "all-v1", "Split": { "v1": 100 } } ]
            """,
            failingV1: true,
            defaults: """ "Defaults": { "Retry": { "MaxRetries": 0 }, "OutlierDetection": { "ConsecutiveFailures": 1 } }, """);
        var bad = $"127.0.0.1:{mesh.FailingV1!.MeshEndPoint.Port}";
        var good = $"127.0.0.1:{mesh.V1.MeshEndPoint.Port}";

        // Calls until one lands on the failing instance and the frontend reports the ejection (it nudges its poll at once).
        var client = mesh.Frontend.Services.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
        await Eventually.WaitAsync(
            async () =>
            {
                using var response = await client.GetAsync("/api/orders", TestContext.Current.CancellationToken);
                var status = await bed.RunAsync("status", "--json", "--near-expiry", "0s");
                return status.Json.GetProperty("workloads").EnumerateArray().Any(w => w.GetProperty("ejectedEndpoints").GetString()?.Contains(bad, StringComparison.Ordinal) == true);
            },
            TimeSpan.FromSeconds(10),
            "the frontend to report the ejection",
            TimeSpan.FromMilliseconds(100));

        var why = await mesh.WhyAsync(HttpMethod.Get, "/api/orders", []);

        Assert.True(why.ExitCode == 0, why.ToString());
        var endpoints = why.Json.GetProperty("endpoints").EnumerateArray().ToDictionary(e => e.GetProperty("address").GetString()!);
        Assert.NotEmpty(endpoints[bad].GetProperty("ejectedBy").EnumerateArray());
        Assert.Empty(endpoints[good].GetProperty("ejectedBy").EnumerateArray());
        Assert.True(endpoints[good].GetProperty("candidate").GetBoolean());
        Assert.False(endpoints[$"127.0.0.1:{mesh.V2.MeshEndPoint.Port}"].GetProperty("candidate").GetBoolean());
        Assert.False(why.Json.GetProperty("panicMode").GetBoolean());
        var table = await mesh.WhyAsync(HttpMethod.Get, "/api/orders", [], json: false);
        Assert.Contains(bad, table.Out, StringComparison.Ordinal);
        Assert.Contains("Where each input came from", table.Out, StringComparison.Ordinal);
    }

    /// <summary>orders v1 and v2 (and optionally a failing v1) with the given authorization, and a frontend calling them with the given routes.</summary>
    private sealed class Mesh : IAsyncDisposable
    {
        private readonly ConcurrentQueue<Activity> _spans;
        private readonly CliBed _bed;

        private Mesh(CliBed bed, MeshAppHost v1, MeshAppHost v2, MeshAppHost? failing, MeshAppHost frontend, string frontendSettings, string ordersSettings, ConcurrentQueue<Activity> spans)
        {
            _bed = bed;
            V1 = v1;
            V2 = v2;
            FailingV1 = failing;
            Frontend = frontend;
            FrontendSettings = frontendSettings;
            OrdersSettings = ordersSettings;
            _spans = spans;
        }

        public MeshAppHost V1 { get; }

        public MeshAppHost V2 { get; }

        public MeshAppHost? FailingV1 { get; }

        public MeshAppHost Frontend { get; }

        public string FrontendSettings { get; }

        public string OrdersSettings { get; }

        public static async Task<Mesh> StartAsync(CliBed bed, string ordersSettings, string routes, bool failingV1 = false, string defaults = "")
        {
            var ordersFile = bed.Write("orders.appsettings.json", ordersSettings);
            var v1 = await StartOrdersAsync(bed, "v1", ordersFile, fail: false);
            var v2 = await StartOrdersAsync(bed, "v2", ordersFile, fail: false);
            var failing = failingV1 ? await StartOrdersAsync(bed, "v1", ordersFile, fail: true) : null;
            var endpoints = new List<string>
            {
                $$"""{ "Address": "127.0.0.1:{{v1.MeshEndPoint.Port}}", "Version": "v1" }""",
                $$"""{ "Address": "127.0.0.1:{{v2.MeshEndPoint.Port}}", "Version": "v2" }""",
            };
            if (failing is not null)
            {
                endpoints.Add($$"""{ "Address": "127.0.0.1:{{failing.MeshEndPoint.Port}}", "Version": "v1" }""");
            }

            var frontendFile = bed.Write("frontend.appsettings.json", $$"""
                { "Mesh": {
                    "Policy": { {{defaults}} "Destinations": { "orders": { {{routes}} } } },
                    "Discovery": { "Static": { "orders": [ {{string.Join(", ", endpoints)}} ] } } } }
                """);
            var spans = new ConcurrentQueue<Activity>();
            var frontend = await MeshAppHost.StartAsync(bed.ControlPlane, "frontend", CliBed.JoinToken,
                meshEndpoint: false,
                jsonFile: frontendFile,
                configureServices: services =>
                {
                    services.AddMeshClient("orders");
                    services.AddOpenTelemetry().WithTracing(tracing => tracing.AddAspNetCoreInstrumentation().AddHttpClientInstrumentation().AddInMemoryExporter(new ActivityQueueCollection(spans)));
                });
            return new Mesh(bed, v1, v2, failing, frontend, frontendFile, ordersFile, spans);
        }

        /// <summary>Makes the call, then asks why, and checks both tell the same story; returns (route, subset, reason, decision, rule).</summary>
        public async Task<(string?, string?, string?, string?, string?)> AgreeAsync(HttpMethod method, string path, (string Name, string Value)[] headers, int expectedExit)
        {
            var (logical, attempt, server) = await CallAsync(method, path, headers);
            var why = await WhyAsync(method, path, headers);
            Assert.True(why.ExitCode == expectedExit, why.ToString());
            var json = why.Json;

            var fromSpans = (
                logical.GetTagItem("mesh.route") as string,
                logical.GetTagItem("mesh.subset") as string,
                logical.GetTagItem("mesh.subset.reason") as string,
                server.GetTagItem("mesh.authorization.decision") as string,
                server.GetTagItem("mesh.authorization.rule") as string);
            var fromWhy = (
                json.GetProperty("route").GetProperty("name").GetString(),
                json.GetProperty("subset").GetProperty("name").GetString(),
                json.GetProperty("subset").GetProperty("reason").GetString(),
                json.GetProperty("authorization").GetProperty("decision").GetString(),
                json.GetProperty("authorization").GetProperty("rule").GetString());
            Assert.Equal(fromSpans, fromWhy);

            // The endpoint the call went to is one why lists as a candidate.
            var endpoint = attempt.GetTagItem("mesh.endpoint") as string;
            Assert.Contains(json.GetProperty("endpoints").EnumerateArray(), e => e.GetProperty("address").GetString() == endpoint && e.GetProperty("candidate").GetBoolean());
            return fromWhy;
        }

        public Task<CliResult> WhyAsync(HttpMethod method, string path, (string Name, string Value)[] headers, bool json = true)
        {
            var args = new List<string> { "why", "--from", "frontend", "--to", "orders", "--path", path, "--method", method.Method, "--config", FrontendSettings, "--dest-config", OrdersSettings };
            foreach (var (name, value) in headers)
            {
                args.AddRange(["--header", $"{name}={value}"]);
            }

            if (json)
            {
                args.Add("--json");
            }

            return _bed.RunAsync([.. args]);
        }

        public async ValueTask DisposeAsync()
        {
            await Frontend.DisposeAsync();
            await V1.DisposeAsync();
            await V2.DisposeAsync();
            if (FailingV1 is not null)
            {
                await FailingV1.DisposeAsync();
            }
        }

        private static Task<MeshAppHost> StartOrdersAsync(CliBed bed, string version, string settingsFile, bool fail) =>
            MeshAppHost.StartAsync(bed.ControlPlane, "orders", CliBed.JoinToken,
                settings: new Dictionary<string, string?> { ["Mesh:Service:Version"] = version },
                jsonFile: settingsFile,
                map: app =>
                {
                    app.MapGet("/api/orders", (HttpContext http) => fail ? Results.StatusCode(503) : Results.Text(version));
                    app.MapPost("/api/orders", () => Results.Text("created"));
                });

        /// <summary>One call in a trace of its own, and its logical, attempt and orders server spans.</summary>
        private async Task<(Activity Logical, Activity Attempt, Activity Server)> CallAsync(HttpMethod method, string path, (string Name, string Value)[] headers)
        {
            var client = Frontend.Services.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
            var parent = new Activity("meshctl-golden") { ActivityTraceFlags = ActivityTraceFlags.Recorded };
            parent.SetIdFormat(ActivityIdFormat.W3C);
            parent.Start();
            try
            {
                using var request = new HttpRequestMessage(method, path);
                foreach (var (name, value) in headers)
                {
                    request.Headers.TryAddWithoutValidation(name, value);
                }

                using var response = await client.SendAsync(request, TestContext.Current.CancellationToken);
            }
            finally
            {
                parent.Stop();
            }

            Activity? logical = null, attempt = null, server = null;
            await Eventually.WaitAsync(
                () =>
                {
                    var trace = _spans.Where(a => a.TraceId == parent.TraceId).ToList();
                    logical = trace.FirstOrDefault(a => a.Source.Name == "MeshKit" && a.DisplayName == "mesh orders");
                    attempt = trace.FirstOrDefault(a => a.Kind == ActivityKind.Client && a.GetTagItem("mesh.endpoint") is not null);
                    server = trace.FirstOrDefault(a => a.Kind == ActivityKind.Server && a.GetTagItem("mesh.authorization.decision") is not null);
                    return logical is not null && attempt is not null && server is not null;
                },
                TimeSpan.FromSeconds(10),
                $"the spans of {method} {path}");
            return (logical!, attempt!, server!);
        }
    }
}
