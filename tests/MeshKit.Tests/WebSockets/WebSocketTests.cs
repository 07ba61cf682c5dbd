using System.Diagnostics;
using System.Net;
using System.Net.WebSockets;
using System.Text;
using MeshKit.Balancing;
using MeshKit.Server;
using MeshKit.Testing;
using MeshKit.Tests.Identity;
using MeshKit.Transport;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Tests.WebSockets;

/// <summary>
/// WebSockets through a mesh client (<c>ClientWebSocket.ConnectAsync(wss://callee/..., meshHttpClient)</c>) to a WebSocket
/// endpoint on the mesh endpoint: HTTP/1.1 upgrade and HTTP/2 extended CONNECT, over mTLS, with the caller's identity.
/// </summary>
[Trait("Area", "WebSockets")]
public sealed class WebSocketTests(MeshTestBed bed) : IClassFixture<MeshTestBed>
{
    private const string CallerId = $"spiffe://{ControlPlaneHost.TrustDomain}/ns/default/svc/frontend";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task An_HTTP_1_1_upgrade_through_a_mesh_client_echoes_with_the_callers_SPIFFE_ID()
    {
        await using var callee = await ChatServer.StartAsync(bed);
        await using var caller = await StartCallerAsync([callee]);

        using var socket = await ConnectAsync(caller, HttpVersion.Version11, HttpVersionPolicy.RequestVersionExact);

        Assert.Equal($"HTTP/1.1 {CallerId} hello", await EchoAsync(socket, "hello"));
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", Ct);
        AssertUpgradeCountedAsSuccess(caller, "1xx");
    }

    [Fact]
    public async Task An_HTTP_2_extended_CONNECT_through_a_mesh_client_echoes_with_the_callers_SPIFFE_ID()
    {
        await using var callee = await ChatServer.StartAsync(bed);
        await using var caller = await StartCallerAsync([callee]);

        using var socket = await ConnectAsync(caller, HttpVersion.Version20, HttpVersionPolicy.RequestVersionExact);

        Assert.Equal($"HTTP/2 {CallerId} hello", await EchoAsync(socket, "hello"));
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", Ct);
        AssertUpgradeCountedAsSuccess(caller, "2xx");
    }

    [Fact]
    public async Task With_the_mesh_transport_at_HTTP_1_1_a_socket_that_allows_a_lower_version_upgrades_over_HTTP_1_1()
    {
        await using var callee = await ChatServer.StartAsync(bed);
        await using var caller = await StartCallerAsync([callee],
            new Dictionary<string, string?> { ["Mesh:Transport:HttpVersion"] = "1.1" });

        // Asks for HTTP/2 but allows less: the mesh transport says 1.1, so ClientWebSocket falls back to the upgrade.
        using var socket = await ConnectAsync(caller, HttpVersion.Version20, HttpVersionPolicy.RequestVersionOrLower);

        Assert.Equal($"HTTP/1.1 {CallerId} hello", await EchoAsync(socket, "hello"));
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", Ct);
    }

    [Theory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task A_socket_stays_open_and_working_past_the_attempt_and_total_timeouts(string version)
    {
        await using var inventory = await MeshAppHost.StartAsync(bed.ControlPlane, "inventory", MeshTestBed.Token, map: app => app.MapGet("/", () => "in stock"));
        await using var callee = await ChatServer.StartAsync(bed, downstream: inventory);
        await using var caller = await StartCallerAsync([callee],
            new Dictionary<string, string?>
            {
                ["Mesh:Policy:Destinations:callee:AttemptTimeout"] = "00:00:01",
                ["Mesh:Policy:Destinations:callee:Timeout"] = "00:00:02",
            });
        var http = Client(caller);
        var watch = Stopwatch.StartNew();
        using var socket = await ConnectAsync(caller, Version.Parse(version), HttpVersionPolicy.RequestVersionExact);

        // Four rounds of about 1 s: twice the total timeout. In each, other calls of the same client time out at their
        // attempt timeout (the mesh's pooled call state and its cancellation sources must not reach the socket), and the
        // socket's server calls another mesh service (the caller's deadline bounded the upgrade, not the socket's life).
        var expected = version == "1.1" ? "HTTP/1.1" : "HTTP/2";
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal($"{expected} {CallerId} tick {i}", await EchoAsync(socket, $"tick {i}"));
            Assert.Equal($"{expected} {CallerId} in stock", await CallInventoryThroughAsync(socket));
            var slow = await Assert.ThrowsAsync<MeshCallException>(() => http.GetAsync("/slow", Ct));
            Assert.Equal("timeout", slow.Reason);
        }

        Assert.True(watch.Elapsed > TimeSpan.FromSeconds(3), $"the socket lasted {watch.Elapsed}");
        Assert.Equal(WebSocketState.Open, socket.State);
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", Ct);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, socket.CloseStatus);

        // The upgrade ended its attempt at the response headers: nothing is in flight, nothing counted against the endpoint
        // but the slow calls' timeouts.
        var state = caller.Services.GetRequiredService<EndpointStateRegistry>().Find("callee", $"127.0.0.1:{callee.Host.MeshEndPoint.Port}");
        Assert.NotNull(state);
        Assert.Equal(0, state.InFlight);
    }

    /// <summary>
    /// Asks the socket's server to make a mesh call. A 5 s certificate that a loaded machine renewed late makes that call
    /// fail closed for a moment (identity_unavailable, "was not made"), which is not what this test is about; it is asked
    /// again then, up to three times. A deadline leaking from the upgrade into the socket fails as a timeout every time.
    /// </summary>
    private static async Task<string> CallInventoryThroughAsync(ClientWebSocket socket)
    {
        var reply = string.Empty;
        for (var attempt = 0; attempt < 3; attempt++)
        {
            reply = await EchoAsync(socket, "call inventory");
            if (!reply.Contains("was not made", StringComparison.Ordinal))
            {
                break;
            }

            await Task.Delay(500, Ct);
        }

        return reply;
    }

    [Theory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task A_socket_refused_by_mesh_authorization_fails_with_the_reason_and_the_deciding_rule(string version)
    {
        await using var callee = await ChatServer.StartAsync(bed, new Dictionary<string, string?>
        {
            ["Mesh:Authorization:DefaultAction"] = "Deny",
            ["Mesh:Authorization:Rules:0:Name"] = "orders-chats",
            ["Mesh:Authorization:Rules:0:From:Services:0"] = "orders",
            ["Mesh:Authorization:Rules:0:To:Paths:0"] = "/chat",
        });
        await using var caller = await StartCallerAsync([callee]);

        var error = await Assert.ThrowsAsync<WebSocketException>(() => ConnectAsync(caller, Version.Parse(version), HttpVersionPolicy.RequestVersionExact));

        var refusal = Assert.IsType<MeshCallException>(error.InnerException);
        Assert.Equal("mesh_authorization_denied", refusal.Reason);
        Assert.Contains("wss://callee/chat", refusal.Message, StringComparison.Ordinal);
        Assert.Contains("403", refusal.Message, StringComparison.Ordinal);
        Assert.Contains(CallerId, refusal.Message, StringComparison.Ordinal);
        Assert.Equal(0, callee.Accepted);

        // A refusal is the application's answer, not a failure of the endpoint.
        var state = caller.Services.GetRequiredService<EndpointStateRegistry>().Find("callee", $"127.0.0.1:{callee.Host.MeshEndPoint.Port}");
        Assert.NotNull(state);
        Assert.Equal(0, state.ConsecutiveFailures);
        Assert.Equal(0, state.InFlight);
    }

    [Fact]
    public async Task A_plain_ws_URI_is_not_a_mesh_call_and_a_refusing_client_says_to_use_wss()
    {
        await using var callee = await ChatServer.StartAsync(bed);
        await using var caller = await StartCallerAsync([callee],
            new Dictionary<string, string?> { ["Mesh:Client:NonMeshHosts"] = "Refuse" });
        using var socket = new ClientWebSocket();

        var error = await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(new Uri("ws://callee/chat"), Client(caller), Ct));

        var refusal = Assert.IsType<MeshCallException>(error.InnerException);
        Assert.Equal(NonMeshHostGate.RefusedReason, refusal.Reason);
        Assert.Contains("ws://callee", refusal.Message, StringComparison.Ordinal);
        Assert.Contains("wss://", refusal.Message, StringComparison.Ordinal);
        Assert.Equal(0, callee.Accepted);
    }

    [Theory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task An_upgrade_answered_503_is_not_retried_where_a_GET_is(string version)
    {
        await using var callee = await ChatServer.StartAsync(bed);
        await using var caller = await StartCallerAsync([callee], new Dictionary<string, string?>
        {
            ["Mesh:Policy:Destinations:callee:Retry:MaxRetries"] = "2",
            ["Mesh:Policy:Destinations:callee:Retry:BaseDelay"] = "00:00:00.001",
            ["Mesh:Policy:Destinations:callee:Retry:Methods"] = "All",
        });

        // The policy retries a 503 ...
        using (var response = await Client(caller).GetAsync("/unavailable", Ct))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        }

        Assert.Equal(3, callee.Unavailable);

        // ... not an upgrade: the caller (ClientWebSocket) sees the 503 after one attempt.
        var error = await Assert.ThrowsAsync<WebSocketException>(() => ConnectAsync(caller, Version.Parse(version), HttpVersionPolicy.RequestVersionExact, "/unavailable"));
        Assert.Contains("503", error.Message, StringComparison.Ordinal);
        Assert.Equal(4, callee.Unavailable);
    }

    [Fact]
    public async Task An_upgrade_is_never_mirrored()
    {
        await using var v1 = await ChatServer.StartAsync(bed, version: "v1");
        await using var v2 = await ChatServer.StartAsync(bed, version: "v2");
        await using var caller = await StartCallerAsync([v1, v2],
            new Dictionary<string, string?>
            {
                ["Mesh:Policy:Destinations:callee:Routes:0:Split:v1"] = "100",
                ["Mesh:Policy:Destinations:callee:Routes:0:Mirror:Subset"] = "v2",
            });

        // An ordinary GET is mirrored (the policy works) ...
        using (var response = await Client(caller).GetAsync("/plain", Ct))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        await Eventually.WaitAsync(() => v2.Served == 1, TimeSpan.FromSeconds(5), "the GET's mirror copy reaches v2");

        // ... an upgrade is not: a copy would open a second socket that nobody reads.
        using var socket = await ConnectAsync(caller, HttpVersion.Version11, HttpVersionPolicy.RequestVersionExact);
        Assert.Equal($"HTTP/1.1 {CallerId} hello", await EchoAsync(socket, "hello"));
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", Ct);
        using (var after = await Client(caller).GetAsync("/plain", Ct))
        {
            Assert.Equal(HttpStatusCode.OK, after.StatusCode);
        }

        await Eventually.WaitAsync(() => v2.Served == 2, TimeSpan.FromSeconds(5), "the second GET's mirror copy reaches v2");
        Assert.Equal(1, v1.Accepted);
        Assert.Equal(0, v2.Accepted);
        Assert.Equal(0, v2.ChatRequests);
        Assert.Equal(0, v2.UpgradeRequests);
    }

    [Fact]
    public void Telling_an_upgrade_from_an_ordinary_call_allocates_nothing()
    {
        using var ordinary = new HttpRequestMessage(HttpMethod.Get, "https://callee/orders");
        ordinary.Headers.TryAddWithoutValidation("x-mesh-timeout-ms", "1000");
        using var upgrade = new HttpRequestMessage(HttpMethod.Get, "wss://callee/chat");
        upgrade.Headers.TryAddWithoutValidation("Connection", "Upgrade");
        upgrade.Headers.TryAddWithoutValidation("Upgrade", "websocket");
        using var connect = new HttpRequestMessage(HttpMethod.Connect, "wss://callee/chat");
        connect.Headers.Protocol = "websocket";
        Assert.False(ProtocolUpgrade.Is(ordinary));

        var before = GC.GetAllocatedBytesForCurrentThread();
        var upgrades = 0;
        for (var i = 0; i < 1000; i++)
        {
            upgrades += (ProtocolUpgrade.Is(ordinary) ? 100 : 0) + (ProtocolUpgrade.Is(upgrade) ? 1 : 0) + (ProtocolUpgrade.Is(connect) ? 1 : 0);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(2000, upgrades);
    }

    /// <summary>A mesh app (<c>frontend</c>) whose mesh client <c>callee</c> reaches <paramref name="servers"/> through static discovery.</summary>
    private async Task<MeshAppHost> StartCallerAsync(ChatServer[] servers, IDictionary<string, string?>? settings = null)
    {
        var all = new Dictionary<string, string?>();
        for (var i = 0; i < servers.Length; i++)
        {
            foreach (var (key, value) in servers[i].Host.AsStaticEndpoint("callee", i, servers[i].Version))
            {
                all[key] = value;
            }
        }

        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            all[key] = value;
        }

        return await MeshAppHost.StartAsync(bed.ControlPlane, "frontend", MeshTestBed.Token, settings: all, meshEndpoint: false,
            configureServices: services => services.AddHttpClient("callee", c => c.BaseAddress = new Uri("https://callee")).AddMesh());
    }

    private static async Task<ClientWebSocket> ConnectAsync(MeshAppHost caller, Version version, HttpVersionPolicy policy, string path = "/chat")
    {
        var socket = new ClientWebSocket();
        socket.Options.HttpVersion = version;
        socket.Options.HttpVersionPolicy = policy;
        try
        {
            await socket.ConnectAsync(new Uri("wss://callee" + path), Client(caller), Ct);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static HttpClient Client(MeshAppHost caller) => caller.Services.GetRequiredService<IHttpClientFactory>().CreateClient("callee");

    private static async Task<string> EchoAsync(WebSocket socket, string text)
    {
        await socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, endOfMessage: true, Ct);
        var buffer = new byte[4096];
        var received = await socket.ReceiveAsync(buffer, Ct);
        Assert.True(received.EndOfMessage);
        return Encoding.UTF8.GetString(buffer, 0, received.Count);
    }

    private static void AssertUpgradeCountedAsSuccess(MeshAppHost caller, string statusClass)
    {
        var request = Assert.Single(caller.Metrics.Points, p => p.Instrument == "mesh.client.requests");
        Assert.Equal("success", request.Tags["mesh.outcome"]);
        Assert.Equal(statusClass, request.Tags["http.response.status_class"]);
    }

    /// <summary>
    /// A mesh app (service <c>callee</c>) with a WebSocket endpoint <c>/chat</c> that answers each message with the request's
    /// protocol, the caller's SPIFFE ID and the message; <c>/slow</c> answers after 30 s; anything else answers at once.
    /// </summary>
    private sealed class ChatServer : IAsyncDisposable
    {
        private int _accepted;
        private int _upgradeRequests;
        private int _chatRequests;
        private int _unavailable;
        private int _served;

        private ChatServer(MeshAppHost host, string version)
        {
            Host = host;
            Version = version;
        }

        public MeshAppHost Host { get; }

        public string Version { get; }

        /// <summary>Gets how many ordinary (not WebSocket) requests it served.</summary>
        public int Served => Volatile.Read(ref _served);

        public int Accepted => Volatile.Read(ref _accepted);

        public int UpgradeRequests => Volatile.Read(ref _upgradeRequests);

        /// <summary>Gets how many requests <c>/unavailable</c> answered 503.</summary>
        public int Unavailable => Volatile.Read(ref _unavailable);

        /// <summary>Gets how many requests reached <c>/chat</c>, WebSocket or not.</summary>
        public int ChatRequests => Volatile.Read(ref _chatRequests);

        public static async Task<ChatServer> StartAsync(MeshTestBed bed, IDictionary<string, string?>? settings = null, string version = "v1", MeshAppHost? downstream = null)
        {
            ChatServer? self = null;
            var all = new Dictionary<string, string?> { ["Mesh:Service:Version"] = version };
            if (downstream is not null)
            {
                foreach (var (key, value) in downstream.AsStaticEndpoint("inventory"))
                {
                    all[key] = value;
                }
            }

            foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
            {
                all[key] = value;
            }

            var host = await MeshAppHost.StartAsync(bed.ControlPlane, "callee", MeshTestBed.Token, settings: all,
                configureServices: services => services.AddHttpClient("inventory", c => c.BaseAddress = new Uri("https://inventory")).AddMesh(),
                map: app =>
                {
                    app.UseWebSockets();
                    app.Map("/chat", (HttpContext http) => self!.ChatAsync(http));
                    app.Map("/unavailable", (HttpContext http) =>
                    {
                        Interlocked.Increment(ref self!._unavailable);
                        http.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                    });
                    app.Map("/slow", async (HttpContext http) => await Task.Delay(TimeSpan.FromSeconds(30), http.RequestAborted));
                    app.Map("/{**path}", (HttpContext http) => self!.PlainAsync(http));
                });
            self = new ChatServer(host, version);
            return self;
        }

        public ValueTask DisposeAsync() => Host.DisposeAsync();

        private async Task ChatAsync(HttpContext http)
        {
            Interlocked.Increment(ref _chatRequests);
            if (!http.WebSockets.IsWebSocketRequest)
            {
                http.Response.StatusCode = StatusCodes.Status400BadRequest;
                return;
            }

            Interlocked.Increment(ref _upgradeRequests);
            var caller = http.Features.Get<IMeshPeerFeature>()?.SpiffeId.Value ?? "public";
            using var socket = await http.WebSockets.AcceptWebSocketAsync();
            Interlocked.Increment(ref _accepted);
            var buffer = new byte[4096];
            while (true)
            {
                var received = await socket.ReceiveAsync(buffer, http.RequestAborted);
                if (received.MessageType == WebSocketMessageType.Close)
                {
                    await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", http.RequestAborted);
                    return;
                }

                var text = Encoding.UTF8.GetString(buffer, 0, received.Count);
                if (text == "call inventory")
                {
                    // A mesh call made while serving the socket, long after the upgrade.
                    var client = http.RequestServices.GetRequiredService<IHttpClientFactory>().CreateClient("inventory");
                    try
                    {
                        text = await client.GetStringAsync("/", http.RequestAborted);
                    }
                    catch (HttpRequestException ex)
                    {
                        text = ex.Message;
                    }
                }

                var answer = $"{http.Request.Protocol} {caller} {text}";
                await socket.SendAsync(Encoding.UTF8.GetBytes(answer), WebSocketMessageType.Text, endOfMessage: true, http.RequestAborted);
            }
        }

        private Task PlainAsync(HttpContext http)
        {
            if (http.WebSockets.IsWebSocketRequest)
            {
                Interlocked.Increment(ref _upgradeRequests);
            }

            Interlocked.Increment(ref _served);
            return http.Response.WriteAsync("plain");
        }
    }
}
