using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace MeshKit.EndToEnd.Tests.Shop;

/// <summary>
/// The Shop sample end to end: real processes started by its AppHost, real mTLS between them, and what the tests assert
/// about tracing and routing read back from the real Aspire dashboard's telemetry API.
/// </summary>
[Trait("Area", "EndToEnd")]
[Collection(AppHostCollection.Name)]
public sealed class ShopEndToEndTests(ShopAppFixture shop) : IClassFixture<ShopAppFixture>
{
    private const string TrustDomain = "mesh.local";
    private const string RunHeader = "x-shop-run";
    private static readonly string FrontendId = $"spiffe://{TrustDomain}/ns/default/svc/frontend";
    private static readonly string OrdersId = $"spiffe://{TrustDomain}/ns/default/svc/orders";
    private static readonly string InventoryId = $"spiffe://{TrustDomain}/ns/default/svc/inventory";
    private const string ReserveMethod = "/inventory.v1.Inventory/Reserve";
    private const int ClientKind = 3;

    [Fact]
    public async Task One_trace_spans_frontend_orders_and_inventory_with_the_callers_SPIFFE_IDs_on_the_server_spans()
    {
        var cancellationToken = Deadline(TimeSpan.FromSeconds(60), out var deadline);
        using (deadline)
        {
            var run = $"{shop.RunId}-trace";
            var traceId = ActivityTraceId.CreateRandom().ToHexString();
            using var frontend = shop.PublicClient("frontend");
            using var request = PlaceOrder(run);
            request.Headers.Add("traceparent", $"00-{traceId}-{ActivitySpanId.CreateRandom().ToHexString()}-01");

            using var response = await frontend.SendAsync(request, cancellationToken);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var order = await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken);
            var orders = $"orders-{order.GetProperty("version").GetString()}";

            // The whole trace, across the three processes, as the dashboard received it over OTLP.
            var spans = await shop.PollSpansAsync(
                $"/api/telemetry/traces/{traceId}",
                s => s.Any(x => x.Resource == "inventory" && x.IsServer) && s.Any(x => x.Resource == orders && x.IsServer) && s.Any(x => x.Resource == "frontend" && x.IsServer),
                TimeSpan.FromSeconds(30),
                $"trace {traceId} to reach the dashboard from frontend, {orders} and inventory",
                cancellationToken);
            Assert.All(spans, s => Assert.Equal(traceId, s.TraceId));
            var byId = spans.ToDictionary(s => s.SpanId);

            // frontend: a public request, so its server span has no mesh caller.
            var frontendServer = Assert.Single(spans, s => s.Resource == "frontend" && s.IsServer);
            Assert.Equal("POST /api/orders", frontendServer.Name);
            Assert.Null(frontendServer["mesh.caller.spiffe_id"]);
            Assert.Equal(run, frontendServer["shop.run"]);

            // frontend -> orders: the logical mesh call, then orders' server span names frontend's SPIFFE ID as its caller.
            var toOrders = Assert.Single(spans, s => s.Resource == "frontend" && s.Name == "mesh orders");
            Assert.Equal("canary", toOrders["mesh.route"]);
            Assert.Equal("success", toOrders["mesh.outcome"]);
            var ordersServer = Assert.Single(spans, s => s.Resource == orders && s.IsServer);
            Assert.Equal(FrontendId, ordersServer["mesh.caller.spiffe_id"]);
            Assert.Equal("frontend", ordersServer["mesh.caller.service"]);
            Assert.Equal("allow", ordersServer["mesh.authorization.decision"]);
            Assert.True(Descends(ordersServer, toOrders, byId), $"{ordersServer} is not below {toOrders}");

            // orders -> inventory (gRPC): inventory's server span names orders' SPIFFE ID and the rule that allowed it.
            var toInventory = Assert.Single(spans, s => s.Resource == orders && s.Name == "mesh inventory");
            var inventoryServer = Assert.Single(spans, s => s.Resource == "inventory" && s.IsServer);
            Assert.Equal(OrdersId, inventoryServer["mesh.caller.spiffe_id"]);
            Assert.Equal("orders", inventoryServer["mesh.caller.service"]);
            Assert.Equal("allow", inventoryServer["mesh.authorization.decision"]);
            Assert.True(Descends(toInventory, ordersServer, byId), $"{toInventory} is not below {ordersServer}");
            Assert.True(Descends(inventoryServer, toInventory, byId), $"{inventoryServer} is not below {toInventory}");
            Assert.True(Descends(inventoryServer, frontendServer, byId), "inventory's server span does not descend from frontend's");
        }
    }

    [Fact]
    public async Task Orders_reserve_stock_in_inventory_over_grpc_and_inventorys_server_span_names_the_orders_SPIFFE_ID()
    {
        var cancellationToken = Deadline(TimeSpan.FromSeconds(60), out var deadline);
        using (deadline)
        {
            var run = $"{shop.RunId}-grpc";
            using var frontend = shop.PublicClient("frontend");

            // An order that inventory can serve: orders calls inventory.v1.Inventory/Reserve through the mesh.
            var (placed, spans) = await PlaceTracedOrderAsync(frontend, run, "espresso-beans", cancellationToken);
            Assert.Equal(HttpStatusCode.OK, placed.Status);
            var orders = $"orders-{JsonDocument.Parse(placed.Body).RootElement.GetProperty("version").GetString()}";
            var byId = spans.ToDictionary(s => s.SpanId);

            // orders: MeshKit's logical call to inventory, a gRPC call (POST) that the endpoint answered, and its attempt.
            var toInventory = Assert.Single(spans, s => s.Resource == orders && s.Name == "mesh inventory");
            Assert.Equal("success", toInventory["mesh.outcome"]);
            Assert.Equal("POST", toInventory["http.request.method"]);
            Assert.Equal("200", toInventory["http.response.status_code"]);

            // The OK status of a call that sent a message comes in the HTTP/2 trailers, which MeshKit does not read yet
            // (docs/grpc.md): the span carries no gRPC status, or OK once it does.
            Assert.True(toInventory["rpc.grpc.status_code"] is null or "0", $"{toInventory} has rpc.grpc.status_code {toInventory["rpc.grpc.status_code"]}");
            var attempt = Assert.Single(spans, s => s.Resource == orders && s.Kind == ClientKind && s.ParentSpanId == toInventory.SpanId);
            Assert.EndsWith(ReserveMethod, attempt["url.full"], StringComparison.Ordinal);

            // Around it, the gRPC client's own span, with the method and the OK status it read from the trailers.
            var grpcCall = Assert.Single(spans, s => s.Resource == orders && s.Name == "Grpc.Net.Client.GrpcOut");
            Assert.Equal(ClientKind, grpcCall.Kind);
            Assert.Equal(ReserveMethod, grpcCall["grpc.method"]);
            Assert.Equal("0", grpcCall["grpc.status_code"]);
            Assert.Equal(grpcCall.SpanId, toInventory.ParentSpanId);

            // inventory: the gRPC method's server span, with orders' SPIFFE ID as the validated caller and the run tag that
            // orders passed on as gRPC metadata. (Its mesh.authorization.decision is not checked here: today it records the
            // decision on Grpc.AspNetCore's catch-all "unimplemented" endpoints, which routing offers as candidates too;
            // docs/grpc.md.)
            var inventoryServer = Assert.Single(spans, s => s.Resource == "inventory" && s.IsServer);
            Assert.Equal($"POST {ReserveMethod}", inventoryServer.Name);
            Assert.Equal(ReserveMethod, inventoryServer["grpc.method"]);
            Assert.Equal("0", inventoryServer["grpc.status_code"]);
            Assert.Equal(OrdersId, inventoryServer["mesh.caller.spiffe_id"]);
            Assert.Equal("orders", inventoryServer["mesh.caller.service"]);
            Assert.Equal(run, inventoryServer["shop.run"]);
            Assert.True(Descends(inventoryServer, attempt, byId), $"{inventoryServer} is not below {attempt}");

            // An order of a product inventory does not have: the gRPC call ends NOT_FOUND before any message (Trailers-Only),
            // so MeshKit's logical span carries the gRPC status; the endpoint answered, so the outcome is still a success.
            // orders turns the status into the answer it always gave for a refused reservation (502 with inventory's reason),
            // which frontend's policy retries (5xx): each attempt is one more call to inventory, each NOT_FOUND.
            var (refused, refusedSpans) = await PlaceTracedOrderAsync(frontend, run, "unicorn-horns", cancellationToken);
            Assert.Equal(HttpStatusCode.BadGateway, refused.Status);
            Assert.Contains("NotFound", refused.Body, StringComparison.Ordinal);
            Assert.Contains("unicorn-horns", refused.Body, StringComparison.Ordinal);
            Assert.All(refusedSpans.Where(s => s.Name == "Grpc.Net.Client.GrpcOut"), call => Assert.Equal("5", call["grpc.status_code"]));
            var refusedCalls = refusedSpans.Where(s => s.Name == "mesh inventory").ToList();
            Assert.NotEmpty(refusedCalls);
            Assert.All(refusedCalls, call =>
            {
                Assert.Equal("grpc", call["rpc.system"]);
                Assert.Equal("5", call["rpc.grpc.status_code"]);
                Assert.Equal("success", call["mesh.outcome"]);
            });
            var refusedServers = refusedSpans.Where(s => s.Resource == "inventory" && s.IsServer).ToList();
            Assert.NotEmpty(refusedServers);
            Assert.All(refusedServers, server =>
            {
                Assert.Equal($"POST {ReserveMethod}", server.Name);
                Assert.Equal("5", server["grpc.status_code"]);
                Assert.Equal(OrdersId, server["mesh.caller.spiffe_id"]);
            });
        }
    }

    [Fact]
    public async Task Across_2000_tagged_orders_the_v2_canary_takes_10_percent_give_or_take_3_points()
    {
        const int Orders = 2000;
        var cancellationToken = Deadline(TimeSpan.FromSeconds(100), out var deadline);
        using (deadline)
        {
            var run = $"{shop.RunId}-split";
            using var frontend = shop.PublicClient("frontend");
            var answered = new Dictionary<string, int>(StringComparer.Ordinal);
            await Parallel.ForEachAsync(
                Enumerable.Range(0, Orders),
                new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken },
                async (_, ct) =>
                {
                    using var request = PlaceOrder(run);
                    using var response = await frontend.SendAsync(request, ct);
                    Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                    var version = (await response.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("version").GetString()!;
                    lock (answered)
                    {
                        answered[version] = answered.GetValueOrDefault(version) + 1;
                    }
                });

            // What the dashboard saw: the tagged server spans of each version of orders.
            var limit = $"limit={Orders * 5}";
            var v1 = await CountTaggedServerSpansAsync("orders-v1", run, limit, answered.GetValueOrDefault("v1"), cancellationToken);
            var v2 = await CountTaggedServerSpansAsync("orders-v2", run, limit, answered.GetValueOrDefault("v2"), cancellationToken);

            Assert.Equal(Orders, v1 + v2);
            Assert.Equal(answered.GetValueOrDefault("v2"), v2);
            var share = 100.0 * v2 / (v1 + v2);
            Assert.InRange(share, 7.0, 13.0);
            TestContext.Current.SendDiagnosticMessage($"v2 took {v2} of {v1 + v2} tagged orders ({share:0.0} %).");
        }
    }

    [Fact]
    public async Task The_x_mesh_subset_header_sends_every_tagged_order_to_v2()
    {
        const int Orders = 40;
        var cancellationToken = Deadline(TimeSpan.FromSeconds(60), out var deadline);
        using (deadline)
        {
            var run = $"{shop.RunId}-override";
            using var frontend = shop.PublicClient("frontend");
            for (var i = 0; i < Orders; i++)
            {
                using var request = PlaceOrder(run);
                request.Headers.Add("x-mesh-subset", "v2");
                using var response = await frontend.SendAsync(request, cancellationToken);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                Assert.Equal("v2", (await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken)).GetProperty("version").GetString());
            }

            // In the dashboard: each tagged request's logical call chose v2 because of the header, and v2 served it.
            var spans = await shop.PollSpansAsync(
                $"/api/telemetry/spans?resource=frontend&limit={Orders * 20}",
                s => TaggedTraces(s, run).Count == Orders && s.Count(x => x.Name == "mesh orders" && TaggedTraces(s, run).Contains(x.TraceId)) == Orders,
                TimeSpan.FromSeconds(30),
                $"{Orders} tagged traces of frontend in the dashboard",
                cancellationToken);
            var traces = TaggedTraces(spans, run);
            var calls = spans.Where(s => s.Name == "mesh orders" && traces.Contains(s.TraceId)).ToList();
            Assert.All(calls, call =>
            {
                Assert.Equal("v2", call["mesh.subset"]);
                Assert.Equal("header", call["mesh.subset.reason"]);
                Assert.Equal("success", call["mesh.outcome"]);
            });
            Assert.Equal(Orders, await CountTaggedServerSpansAsync("orders-v2", run, $"limit={Orders * 20}", Orders, cancellationToken));
        }
    }

    [Fact]
    public async Task Orders_refuses_every_caller_but_frontend_with_403()
    {
        var cancellationToken = Deadline(TimeSpan.FromSeconds(60), out var deadline);
        using (deadline)
        {
            var run = $"{shop.RunId}-refused";

            // inventory, orders v1 and orders v2 each try a call to orders with their own identity.
            foreach (var (resource, identity) in new[] { ("inventory", InventoryId), ("orders-v1", OrdersId), ("orders-v2", OrdersId) })
            {
                var outcome = await DemoCallAsync(resource, "orders", run, cancellationToken);
                Assert.Equal(identity, outcome.GetProperty("caller").GetString());
                Assert.Equal(403, outcome.GetProperty("status").GetInt32());
                Assert.Equal("mesh_authorization_denied", outcome.GetProperty("reason").GetString());
                Assert.Contains(identity, outcome.GetProperty("detail").GetString(), StringComparison.Ordinal);
            }

            // A caller with no mesh identity at all, on orders' public endpoint.
            using (var orders = shop.PublicClient("orders-v1"))
            using (var request = new HttpRequestMessage(HttpMethod.Put, "/api/orders/no-identity") { Content = JsonContent.Create(new { sku = "oat-milk", quantity = 1 }) })
            {
                using var response = await orders.SendAsync(request, cancellationToken);
                Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
                Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
                var problem = await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken);
                Assert.Equal("mesh_authorization_denied", problem.GetProperty("reason").GetString());
            }

            // frontend, the one allowed caller, gets through (404: the probed order does not exist).
            var allowed = await DemoCallAsync("frontend", "orders", run, cancellationToken);
            Assert.Equal(FrontendId, allowed.GetProperty("caller").GetString());
            Assert.Equal(404, allowed.GetProperty("status").GetInt32());

            // orders' server spans in the dashboard record who was refused and why. Callers without a split policy spread
            // their calls over both versions, so look at both.
            var refused = new List<DashboardSpan>();
            await MeshKit.Testing.Eventually.WaitAsync(
                async () =>
                {
                    refused.Clear();
                    foreach (var orders in new[] { "orders-v1", "orders-v2" })
                    {
                        var spans = await shop.ReadSpansAsync($"/api/telemetry/spans?resource={orders}&limit=20000", cancellationToken);
                        refused.AddRange(spans.Where(x => x.IsServer && x["shop.run"] == run && x["mesh.authorization.decision"] == "deny"));
                    }

                    return refused.Count(x => x["mesh.caller.service"] == "inventory") == 1 && refused.Count(x => x["mesh.caller.service"] == "orders") == 2;
                },
                TimeSpan.FromSeconds(30),
                "the refused calls of inventory and orders on orders' server spans in the dashboard",
                TimeSpan.FromMilliseconds(500));
            Assert.All(refused, span =>
            {
                Assert.Equal(span["mesh.caller.service"] == "inventory" ? InventoryId : OrdersId, span["mesh.caller.spiffe_id"]);
                Assert.Equal("403", span["http.response.status_code"]);
            });
        }
    }

    private static HttpRequestMessage PlaceOrder(string run, string sku = "espresso-beans")
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/orders") { Content = JsonContent.Create(new { sku, quantity = 1 }) };
        request.Headers.Add(RunHeader, run);
        return request;
    }

    /// <summary>Places an order with a trace id of its own and waits for its trace to reach inventory's server span.</summary>
    private async Task<((HttpStatusCode Status, string Body) Answer, List<DashboardSpan> Spans)> PlaceTracedOrderAsync(HttpClient frontend, string run, string sku, CancellationToken cancellationToken)
    {
        var traceId = ActivityTraceId.CreateRandom().ToHexString();
        using var request = PlaceOrder(run, sku);
        request.Headers.Add("traceparent", $"00-{traceId}-{ActivitySpanId.CreateRandom().ToHexString()}-01");
        using var response = await frontend.SendAsync(request, cancellationToken);
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        var spans = await shop.PollSpansAsync(
            $"/api/telemetry/traces/{traceId}",
            s => s.Any(x => x.Resource == "inventory" && x.IsServer) && s.Any(x => x.Name == "mesh inventory") && s.Any(x => x.Name == "Grpc.Net.Client.GrpcOut") && s.Count(x => x.Kind == ClientKind) >= 3,
            TimeSpan.FromSeconds(30),
            $"trace {traceId} ({sku}) to reach the dashboard from frontend, orders and inventory",
            cancellationToken);
        return ((response.StatusCode, body), spans);
    }

    private async Task<JsonElement> DemoCallAsync(string resource, string target, string run, CancellationToken cancellationToken)
    {
        using var client = shop.PublicClient(resource);
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/demo/call/{target}");
        request.Headers.Add(RunHeader, run);
        using var response = await client.SendAsync(request, cancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken);
    }

    private async Task<int> CountTaggedServerSpansAsync(string resource, string run, string limit, int expected, CancellationToken cancellationToken)
    {
        var spans = await shop.PollSpansAsync(
            $"/api/telemetry/spans?resource={resource}&{limit}",
            s => s.Count(x => x.IsServer && x["shop.run"] == run) >= expected,
            TimeSpan.FromSeconds(45),
            $"{expected} server spans of {resource} tagged {run}",
            cancellationToken);
        return spans.Count(x => x.IsServer && x["shop.run"] == run);
    }

    private static HashSet<string> TaggedTraces(List<DashboardSpan> spans, string run) =>
        [.. spans.Where(s => s.IsServer && s["shop.run"] == run).Select(s => s.TraceId)];

    private static bool Descends(DashboardSpan span, DashboardSpan ancestor, Dictionary<string, DashboardSpan> byId)
    {
        for (var current = span; byId.TryGetValue(current.ParentSpanId, out var parent); current = parent)
        {
            if (parent.SpanId == ancestor.SpanId)
            {
                return true;
            }
        }

        return false;
    }

    private static CancellationToken Deadline(TimeSpan timeout, out CancellationTokenSource source)
    {
        source = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        source.CancelAfter(timeout);
        return source.Token;
    }
}
