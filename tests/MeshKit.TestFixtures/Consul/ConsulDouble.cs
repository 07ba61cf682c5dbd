using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace MeshKit.Testing.Consul;

/// <summary>
/// A Consul agent's HTTP API, small and in-process, on 127.0.0.1 with real Kestrel and plain HTTP, for tests only.
/// It follows Consul's documented semantics where MeshKit depends on them: <c>X-Consul-Index</c> on reads and
/// blocking with <c>index</c> and <c>wait</c> (plus up to <c>wait/16</c> of jitter); agent service registration with
/// TTL checks that turn critical when not renewed, so the instance leaves <c>?passing</c>;
/// <c>DeregisterCriticalServiceAfter</c> reaping; <c>/v1/health/service/&lt;name&gt;</c> with <c>passing</c>,
/// <c>tag</c>, <c>filter</c> and <c>dc</c>; <c>/v1/catalog/services</c>; KV with <c>ModifyIndex</c>, <c>cas</c>,
/// <c>recurse</c> and base64 values; sessions (TTL, lock delay, behavior, node checks; renew, destroy, info, list)
/// with KV <c>acquire</c> and <c>release</c>, <c>LockIndex</c>, lock delay, and invalidation on TTL expiry.
/// <para>
/// It is adversarial where Consul is: switches make blocking queries return early with an unchanged index
/// (<see cref="EarlyReturns"/>), indexes go backwards (<see cref="RewindIndex"/>), service addresses come back empty
/// (<see cref="EmptyServiceAddresses"/>), sessions are invalidated on demand as when a check they are tied to fails
/// (<see cref="InvalidateSession"/>), and answers fail with 500 or a malformed body (<see cref="Fault"/>). It
/// counts requests per path and records each request's token. Stop it and start it again on the same port for
/// outage tests; its state survives, as a cluster's does.
/// </para>
/// </summary>
public sealed class ConsulDouble : IAsyncDisposable
{
    private readonly ConsulDoubleState _state;
    private readonly ConcurrentQueue<ConsulDoubleRequest> _requests = new();
    private readonly ConcurrentDictionary<string, int> _inFlight = new(StringComparer.Ordinal);
    private WebApplication? _app;
    private CancellationTokenSource? _stopping;
    private Task _ticker = Task.CompletedTask;
    private int _port;

    private ConsulDouble(ConsulDoubleOptions options)
    {
        Options = options;
        _state = new ConsulDoubleState(options);
        _port = options.Port;
    }

    /// <summary>Gets the settings the double was started with.</summary>
    public ConsulDoubleOptions Options { get; }

    /// <summary>Gets the agent address, for example <c>http://127.0.0.1:41234/</c>.</summary>
    public Uri Address => new($"http://127.0.0.1:{_port}/");

    /// <summary>Gets the port; the same across restarts.</summary>
    public int Port => _port;

    /// <summary>Gets a value indicating whether the double is listening.</summary>
    public bool IsRunning => _app is not null;

    /// <summary>Gets what the double's web host logged (warnings and above).</summary>
    public TestLogSink Logs { get; } = new();

    /// <summary>Gets or sets a value indicating whether blocking queries return at once with an unchanged index (Consul may return early).</summary>
    public bool EarlyReturns { get; set; }

    /// <summary>Gets or sets a value indicating whether health answers carry an empty <c>Service.Address</c> (the caller must use the node's).</summary>
    public bool EmptyServiceAddresses
    {
        get => _state.EmptyServiceAddresses;
        set => _state.EmptyServiceAddresses = value;
    }

    /// <summary>Gets or sets the fault injected into answers; <see cref="ConsulDoubleFault.None"/> by default.</summary>
    public ConsulDoubleFault Fault { get; set; }

    /// <summary>Gets or sets the path prefix <see cref="Fault"/> applies to (for example <c>/v1/health/</c>); every path when <see langword="null"/>.</summary>
    public string? FaultPathPrefix { get; set; }

    /// <summary>Gets or sets the <c>X-Consul-KnownLeader</c> header of reads.</summary>
    public bool KnownLeader { get; set; } = true;

    /// <summary>Gets the current index (as reported, after any <see cref="RewindIndex"/>).</summary>
    public long CurrentIndex => _state.ReportedIndex;

    /// <summary>Gets every request received, in order.</summary>
    public IReadOnlyList<ConsulDoubleRequest> Requests => [.. _requests];

    /// <summary>Starts a double.</summary>
    /// <param name="options">Its settings; Consul's defaults otherwise.</param>
    /// <returns>The running double.</returns>
    public static async Task<ConsulDouble> StartAsync(ConsulDoubleOptions? options = null)
    {
        var consul = new ConsulDouble(options ?? new ConsulDoubleOptions());
        await consul.StartAsync().ConfigureAwait(false);
        return consul;
    }

    /// <summary>Starts listening again after <see cref="StopAsync"/>, on the same port.</summary>
    /// <returns>Completes when listening.</returns>
    public async Task StartAsync()
    {
        if (_app is not null)
        {
            return;
        }

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(Logs);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseShutdownTimeout(TimeSpan.FromSeconds(2));
        builder.WebHost.UseKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(IPAddress.Loopback, _port);
        });

        var app = builder.Build();
        var stopping = new CancellationTokenSource();
        app.Use((context, next) => FrontDoorAsync(context, next, stopping.Token));
        ConsulDoubleEndpoints.Map(app, this, _state, stopping.Token);
        await app.StartAsync().ConfigureAwait(false);

        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        _port = new Uri(address).Port;
        _app = app;
        _stopping = stopping;
        _ticker = TickAsync(stopping.Token);
    }

    /// <summary>Stops listening (an outage): blocking requests in flight are cut, new connections are refused. State is kept.</summary>
    /// <returns>Completes when stopped.</returns>
    public async Task StopAsync()
    {
        var app = _app;
        if (app is null)
        {
            return;
        }

        _app = null;
        await _stopping!.CancelAsync().ConfigureAwait(false);
        await _ticker.ConfigureAwait(false);
        await app.StopAsync().ConfigureAwait(false);
        await app.DisposeAsync().ConfigureAwait(false);
        _stopping.Dispose();
        _stopping = null;
    }

    /// <summary>Makes every index the double reports go backwards by <paramref name="by"/> (at least to 0), as after a snapshot restore.</summary>
    /// <param name="by">How far back.</param>
    public void RewindIndex(long by) => _state.Rewind(by);

    /// <summary>Counts the requests received for <paramref name="path"/> (for example <c>/v1/health/service/orders</c>).</summary>
    /// <param name="path">The exact path.</param>
    /// <param name="since">Count only requests received at or after this time.</param>
    /// <returns>The count.</returns>
    public int CountRequests(string path, DateTimeOffset? since = null) =>
        _requests.Count(r => r.Path == path && (since is null || r.ReceivedAt >= since));

    /// <summary>Gets how many requests for <paramref name="path"/> are being answered right now (blocking queries waiting).</summary>
    /// <param name="path">The exact path.</param>
    /// <returns>The count.</returns>
    public int InFlight(string path) => _inFlight.TryGetValue(path, out var count) ? count : 0;

    /// <summary>Forgets the recorded requests.</summary>
    public void ClearRequests() => _requests.Clear();

    /// <summary>Gets a value indicating whether the agent holds a service instance with this ID.</summary>
    /// <param name="serviceId">The instance ID.</param>
    /// <returns><see langword="true"/> when registered (whatever its health).</returns>
    public bool HasService(string serviceId) => _state.HasService(serviceId);

    /// <summary>Gets a check's status (<c>passing</c>, <c>warning</c>, <c>critical</c>), or <see langword="null"/> when unknown.</summary>
    /// <param name="checkId">The check ID.</param>
    /// <returns>The status.</returns>
    public string? CheckStatus(string checkId) => _state.CheckStatus(checkId);

    /// <summary>
    /// Invalidates a session as the agent does when a check it is tied to fails (a node failure, a crashed holder):
    /// the keys it holds are released (or deleted, by its behavior) and their lock delay starts.
    /// </summary>
    /// <param name="sessionId">The session's ID.</param>
    /// <returns><see langword="true"/> when the session existed.</returns>
    public bool InvalidateSession(string sessionId) => _state.SessionInvalidate(sessionId, DateTimeOffset.UtcNow);

    /// <summary>Gets a value indicating whether a session exists (created, and neither destroyed, expired nor invalidated).</summary>
    /// <param name="sessionId">The session's ID.</param>
    /// <returns><see langword="true"/> when it exists.</returns>
    public bool HasSession(string sessionId) => _state.HasSession(sessionId);

    /// <summary>Gets until when a key's lock delay runs (set when a session holding it ended), or <see langword="null"/>.</summary>
    /// <param name="key">The KV key.</param>
    /// <returns>The end of the lock delay.</returns>
    public DateTimeOffset? LockDelayUntil(string key) => _state.LockDelayUntil(key);

    /// <summary>Stops the double.</summary>
    /// <returns>Completes when stopped.</returns>
    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);

    internal void WriteReadHeaders(HttpResponse response, long index)
    {
        response.Headers["X-Consul-Index"] = Json.Format(index);
        response.Headers["X-Consul-KnownLeader"] = KnownLeader ? "true" : "false";
        response.Headers["X-Consul-LastContact"] = "0";
    }

    private static string? TokenOf(HttpRequest request)
    {
        if (request.Headers.TryGetValue("X-Consul-Token", out var header))
        {
            return header.ToString();
        }

        var authorization = request.Headers.Authorization.ToString();
        if (authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return authorization["Bearer ".Length..];
        }

        return request.Query.TryGetValue("token", out var query) ? query.ToString() : null;
    }

    /// <summary>Records the request, enforces the ACL token and injects faults before the endpoint runs.</summary>
    private async Task FrontDoorAsync(HttpContext context, RequestDelegate next, CancellationToken stopping)
    {
        var request = context.Request;
        var path = request.Path.Value ?? string.Empty;
        var token = TokenOf(request);
        _requests.Enqueue(new ConsulDoubleRequest(request.Method, path, request.QueryString.Value ?? string.Empty, token, DateTimeOffset.UtcNow));
        _inFlight.AddOrUpdate(path, 1, static (_, n) => n + 1);
        try
        {
            if (Options.RequiredToken is { } required && token != required)
            {
                context.Response.StatusCode = StatusCodes.Status403Forbidden;
                await context.Response.WriteAsync(string.IsNullOrEmpty(token) ? "Permission denied" : "ACL not found", stopping).ConfigureAwait(false);
                return;
            }

            var fault = Fault;
            if (fault != ConsulDoubleFault.None && (FaultPathPrefix is null || path.StartsWith(FaultPathPrefix, StringComparison.Ordinal)))
            {
                if (fault == ConsulDoubleFault.ServerError)
                {
                    context.Response.StatusCode = StatusCodes.Status500InternalServerError;
                    await context.Response.WriteAsync("rpc error making call: No cluster leader", stopping).ConfigureAwait(false);
                    return;
                }

                if (HttpMethods.IsGet(request.Method))
                {
                    // A corrupt answer that claims a change, so a client cannot skip it as "nothing new".
                    WriteReadHeaders(context.Response, _state.ReportedIndex + 1);
                    context.Response.ContentType = "application/json";
                    await context.Response.WriteAsync("[{\"Node\":{\"ID\":\"0f1e\",\"Node\":\"consul-dou", stopping).ConfigureAwait(false);
                    return;
                }
            }

            await next(context).ConfigureAwait(false);
        }
        finally
        {
            _inFlight.AddOrUpdate(path, 0, static (_, n) => n - 1);
        }
    }

    private async Task TickAsync(CancellationToken stopping)
    {
        using var timer = new PeriodicTimer(Options.TickInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stopping).ConfigureAwait(false))
            {
                _state.Tick(DateTimeOffset.UtcNow);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
