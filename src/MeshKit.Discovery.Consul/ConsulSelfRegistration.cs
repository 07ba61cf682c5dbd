using System.Net;
using System.Reflection;
using MeshKit.Consul;
using MeshKit.Hosting;
using MeshKit.Identity;
using MeshKit.Server;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshKit.Discovery;

/// <summary>
/// Registers this workload's mesh endpoint in Consul once the server has bound it, keeps its TTL check passing while
/// the host is healthy, and leaves gracefully: on stop it marks the check critical, deregisters, waits (bounded) for
/// the requests in flight, and only then lets Kestrel close its connections with HTTP/2 GOAWAY. A workload without a
/// mesh endpoint registers nothing. Consul being unreachable never fails the host.
/// </summary>
internal sealed partial class ConsulSelfRegistration : IHostedLifecycleService, IAsyncDisposable
{
    // The data plane's version (the MeshKit package), not this add-on's.
    private static readonly string MeshKitVersion =
        typeof(MeshOptions).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";

    private readonly ConsulClient _client;
    private readonly MeshOptions _mesh;
    private readonly ConsulRegistrationOptions _options;
    private readonly MeshEndpointInfo _endpoint;
    private readonly InFlightRequests _inFlight;
    private readonly IServiceProvider _services;
    private readonly ILoggerFactory _loggerFactory;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private Task _run = Task.CompletedTask;
    private int _stopped;

    public ConsulSelfRegistration(
        ConsulClient client,
        IOptions<MeshOptions> mesh,
        IOptions<ConsulRegistrationOptions> options,
        MeshEndpointInfo endpoint,
        InFlightRequests inFlight,
        IServiceProvider services,
        ILoggerFactory loggerFactory,
        TimeProvider time)
    {
        _client = client;
        _mesh = mesh.Value;
        _options = options.Value;
        _endpoint = endpoint;
        _inFlight = inFlight;
        _services = services;
        _loggerFactory = loggerFactory;
        _time = time;
        _logger = loggerFactory.CreateLogger<ConsulSelfRegistration>();
    }

    /// <summary>Gets the registrar, once the instance has been registered (or is being); <see langword="null"/> when it registers nothing.</summary>
    internal ConsulServiceRegistrar? Registrar { get; private set; }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Runs after every hosted service has started, so Kestrel has bound the mesh endpoint and its port is known.</summary>
    public Task StartedAsync(CancellationToken cancellationToken)
    {
        if (!_options.Register)
        {
            LogNotRegistering(_logger, $"{ConsulOptions.SectionPath}:Register is false");
            return Task.CompletedTask;
        }

        if (_endpoint.BoundEndPoint is not { } bound)
        {
            LogNotRegistering(_logger, "this workload has no mesh endpoint (Mesh:Endpoint:Port is not set)");
            return Task.CompletedTask;
        }

        var registration = CreateRegistration(bound);
        var registrar = new ConsulServiceRegistrar(_client, registration, _loggerFactory.CreateLogger<ConsulServiceRegistrar>());
        Registrar = registrar;

        // In the background: a slow or unreachable agent must not hold up the host's start.
        _run = RunAsync(registrar, _services.GetService<HealthCheckService>(), _stopping.Token);
        return Task.CompletedTask;
    }

    /// <summary>
    /// The graceful stop, before any hosted service (Kestrel included) stops: fail readiness (check critical), deregister,
    /// then wait for the requests in flight. Kestrel's own stop follows and sends GOAWAY on its HTTP/2 connections.
    /// </summary>
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        var registrar = Registrar;
        if (registrar is null || Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        await _run.ConfigureAwait(false);

        // The registrar marks the check critical first (watchers drop the instance even if the deregistration fails),
        // then deregisters.
        await registrar.StopAsync(cancellationToken).ConfigureAwait(false);

        var inFlight = _inFlight.Count;
        LogDraining(_logger, registrar.ServiceId, inFlight, _options.DrainTimeout.TotalSeconds);
        var started = _time.GetTimestamp();
        if (await _inFlight.WaitForNoneAsync(_options.DrainTimeout, cancellationToken).ConfigureAwait(false))
        {
            LogDrained(_logger, inFlight, _time.GetElapsedTime(started).TotalMilliseconds);
        }
        else
        {
            LogDrainTimedOut(_logger, _inFlight.Count, _options.DrainTimeout.TotalSeconds);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Stops reporting without deregistering (the host was disposed without a stop): the instance lapses with its TTL, as after a crash.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _run.ConfigureAwait(false);
        if (Registrar is { } registrar)
        {
            await registrar.DisposeAsync().ConfigureAwait(false);
        }

        _stopping.Dispose();
    }

    private static string AdvertiseAddress(MeshEndpointOptions endpoint, IPEndPoint bound)
    {
        if (!string.IsNullOrWhiteSpace(endpoint.AdvertiseAddress))
        {
            return endpoint.AdvertiseAddress;
        }

        return bound.Address.Equals(IPAddress.Any) || bound.Address.Equals(IPAddress.IPv6Any) ? Dns.GetHostName() : bound.Address.ToString();
    }

    private ConsulServiceRegistration CreateRegistration(IPEndPoint bound)
    {
        var service = _mesh.Service;
        var name = ConsulServiceNames.ForService(service.Name!, service.Namespace);
        var instance = service.InstanceId ?? Environment.MachineName.ToLowerInvariant();

        // Unique on the agent even when two services share a host and process id; readable in the Consul UI.
        var id = instance.StartsWith(name + "-", StringComparison.Ordinal) ? instance : name + "-" + instance;

        var meta = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["spiffe-id"] = SpiffeId.Create(_mesh.TrustDomain, service.Namespace, service.Name!).Value,
            ["meshkit-version"] = MeshKitVersion,
        };
        if (!string.IsNullOrEmpty(service.Version))
        {
            meta["version"] = service.Version;
        }

        if (!string.IsNullOrEmpty(service.Zone))
        {
            meta["zone"] = service.Zone;
        }

        var tags = new List<string> { ConsulRegistrationOptions.MeshKitTag };
        foreach (var tag in _options.Tags)
        {
            if (!tags.Contains(tag, StringComparer.Ordinal))
            {
                tags.Add(tag);
            }
        }

        return new ConsulServiceRegistration
        {
            Id = id,
            Name = name,
            Address = AdvertiseAddress(_mesh.Endpoint, bound),
            Port = bound.Port,
            Tags = tags,
            Meta = meta,
            Check = new ConsulTtlCheck
            {
                Name = "MeshKit TTL",
                Ttl = _options.Ttl,
                DeregisterCriticalServiceAfter = _options.DeregisterCriticalServiceAfter,
                Notes = "Reported by the MeshKit process; critical when its health checks fail or it is stopping.",
            },
        };
    }

    private async Task RunAsync(ConsulServiceRegistrar registrar, HealthCheckService? health, CancellationToken cancellationToken)
    {
        // Leave the host's start; the first registration (and health run) happen here.
        await Task.Yield();
        try
        {
            if (health is not null)
            {
                var (status, output) = await CheckHealthAsync(health, cancellationToken).ConfigureAwait(false);
                await registrar.SetStatusAsync(status, output, CancellationToken.None).ConfigureAwait(false);
            }

            // Not cancellable: a cancelled first attempt would leave the registrar half started. It is bounded by the
            // client's request timeout.
            await registrar.StartAsync(CancellationToken.None).ConfigureAwait(false);
            if (health is null)
            {
                return;
            }

            using var timer = new PeriodicTimer(_options.HealthCheckInterval, _time);
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                var (status, output) = await CheckHealthAsync(health, cancellationToken).ConfigureAwait(false);
                if (status != registrar.Status)
                {
                    LogHealthChanged(_logger, registrar.ServiceId, ConsulStatusName(status), output ?? "healthy");
                    await registrar.SetStatusAsync(status, output, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Unhealthy is critical; Healthy and Degraded pass (a degraded host still serves, as ASP.NET Core's health endpoint answers 200).</summary>
    private async Task<(ConsulCheckStatus Status, string? Output)> CheckHealthAsync(HealthCheckService health, CancellationToken cancellationToken)
    {
        try
        {
            var report = await health.CheckHealthAsync(cancellationToken).ConfigureAwait(false);
            if (report.Status != HealthStatus.Unhealthy)
            {
                return (ConsulCheckStatus.Passing, null);
            }

            // Only the names of the failing checks: their descriptions and exceptions may carry what Consul must not show.
            var failing = new List<string>();
            foreach (var (name, entry) in report.Entries)
            {
                if (entry.Status == HealthStatus.Unhealthy)
                {
                    failing.Add(name);
                }
            }

            return (ConsulCheckStatus.Critical, $"MeshKit: the host is unhealthy (failing: {string.Join(", ", failing)}).");
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogHealthCheckFailed(_logger, ex);
            return (ConsulCheckStatus.Critical, "MeshKit: the host's health checks could not run.");
        }
    }

    private static string ConsulStatusName(ConsulCheckStatus status) => status switch
    {
        ConsulCheckStatus.Passing => "passing",
        ConsulCheckStatus.Warning => "warning",
        _ => "critical",
    };

    [LoggerMessage(EventId = 3110, Level = LogLevel.Information, Message = "Not registering in Consul: {Reason}.")]
    private static partial void LogNotRegistering(ILogger logger, string reason);

    [LoggerMessage(EventId = 3111, Level = LogLevel.Information, Message = "The host's health changed; reporting Consul check of {ServiceId} as {Status}: {Output}")]
    private static partial void LogHealthChanged(ILogger logger, string serviceId, string status, string output);

    [LoggerMessage(EventId = 3112, Level = LogLevel.Warning, Message = "The host's health checks could not run; reporting the Consul check as critical.")]
    private static partial void LogHealthCheckFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 3113, Level = LogLevel.Information, Message = "Stopping: {ServiceId} is critical and deregistered from Consul; waiting up to {DrainSeconds} s for {InFlight} request(s) in flight before the server closes its connections.")]
    private static partial void LogDraining(ILogger logger, string serviceId, long inFlight, double drainSeconds);

    [LoggerMessage(EventId = 3114, Level = LogLevel.Information, Message = "Drained: the {InFlight} request(s) in flight at stop finished in {ElapsedMs:0} ms.")]
    private static partial void LogDrained(ILogger logger, long inFlight, double elapsedMs);

    [LoggerMessage(EventId = 3115, Level = LogLevel.Warning, Message = "{InFlight} request(s) were still in flight after the drain timeout of {DrainSeconds} s (Mesh:Discovery:Consul:DrainTimeout); the server closes them now.")]
    private static partial void LogDrainTimedOut(ILogger logger, long inFlight, double drainSeconds);
}
