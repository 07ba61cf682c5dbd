using System.Globalization;
using System.Net;
using System.Reflection;
using MeshKit.Consul;
using MeshKit.ControlPlane.Storage;
using MeshKit.ControlPlane.Tls;
using MeshKit.Identity;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;

namespace MeshKit.ControlPlane.Replicas;

/// <summary>
/// Registers this control-service replica in Consul when replicas share Consul (<c>ControlPlane:Consul:Address</c>), as
/// <c>ControlPlane:Registration:ServiceName</c> (<c>mesh-control</c>), so that workloads with
/// <c>Mesh:ControlPlane:ConsulService</c> find every replica: its address and port, tags <c>meshkit</c> and
/// <c>mesh-system</c>, meta <c>spiffe-id</c> (the identity workloads check), <c>address</c> (its https:// URL),
/// <c>trust-domain</c> and <c>meshkit-version</c>. A TTL check is kept passing while it runs; a graceful stop marks it
/// critical and deregisters before the server stops, and a crashed replica is reaped by Consul after
/// <c>DeregisterCriticalServiceAfter</c>. Consul being unreachable never stops the replica: registration is retried.
/// </summary>
internal sealed partial class ReplicaRegistration(
    SharedConsul consul,
    IOptions<ControlPlaneOptions> options,
    IServer server,
    ILoggerFactory loggerFactory) : IHostedLifecycleService, IAsyncDisposable
{
    /// <summary>The tag of the reserved namespace, so that an operator sees what the instances are.</summary>
    public const string NamespaceTag = "mesh-system";

    /// <summary>The tag every MeshKit registration carries.</summary>
    public const string ConsulTag = "meshkit";

    private static readonly string Version =
        typeof(ReplicaRegistration).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";

    private readonly ILogger _logger = loggerFactory.CreateLogger<ReplicaRegistration>();
    private ConsulServiceRegistrar? _registrar;
    private Task _registering = Task.CompletedTask;

    /// <summary>Gets the registration, once the replica has registered (or is registering); <see langword="null"/> when it registers nothing.</summary>
    internal ConsulServiceRegistration? Registration => _registrar?.Registration;

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Runs once the server has bound its addresses, so the port is known.</summary>
    public Task StartedAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        if (consul.Client is not { } client || string.IsNullOrEmpty(settings.Registration.ServiceName))
        {
            return Task.CompletedTask;
        }

        if (!AdvertisedEndpoint.TryFrom(server, out var bound))
        {
            LogNotRegistering(_logger, "the server reports no https address");
            return Task.CompletedTask;
        }

        var registration = Create(settings, bound);
        var registrar = new ConsulServiceRegistrar(client, registration, loggerFactory.CreateLogger<ConsulServiceRegistrar>());
        _registrar = registrar;

        // In the background: a slow or unreachable Consul must not hold up the start. The registrar retries on its own.
        _registering = Task.Run(() => registrar.StartAsync(CancellationToken.None), CancellationToken.None);
        return Task.CompletedTask;
    }

    /// <summary>
    /// The graceful stop, before the server stops: critical first (so watchers of <c>?passing</c> drop it at once), then
    /// deregistered. Workloads waiting on this replica are answered 503 <c>replica-stopping</c> and move to another.
    /// </summary>
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        if (_registrar is not { } registrar)
        {
            return;
        }

        await _registering.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await registrar.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Stops reporting without deregistering (disposed without a stop, as after a crash): Consul reaps it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_registrar is { } registrar)
        {
            await _registering.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await registrar.DisposeAsync().ConfigureAwait(false);
        }
    }

    private ConsulServiceRegistration Create(ControlPlaneOptions settings, AdvertisedEndpoint bound)
    {
        var host = bound.Host(settings);
        if (bound.AnyAddress && string.IsNullOrWhiteSpace(settings.AdvertiseAddress))
        {
            LogAdvertisingHostName(_logger, host);
        }

        var port = bound.Port;
        var url = bound.Url(settings).ToString();
        var name = settings.Registration.ServiceName!;
        return new ConsulServiceRegistration
        {
            // Unique on the agent even when several replicas share a host.
            Id = $"{name}-{host.Replace(':', '-')}-{port.ToString(CultureInfo.InvariantCulture)}",
            Name = name,
            Address = host,
            Port = port,
            Tags = [ConsulTag, NamespaceTag],
            Meta = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["spiffe-id"] = SpiffeId.Create(settings.TrustDomain, SpiffeId.ReservedNamespace, ServingCertificate.ServiceName).Value,
                ["address"] = url,
                ["trust-domain"] = settings.TrustDomain,
                ["meshkit-version"] = Version,
            },
            Check = new ConsulTtlCheck
            {
                Name = "MeshKit control service TTL",
                Ttl = settings.Registration.Ttl,
                DeregisterCriticalServiceAfter = settings.Registration.DeregisterCriticalServiceAfter,
                Notes = "Reported by the control-service replica; critical when it is stopping.",
            },
        };
    }

    /// <summary>The first https address the server bound, with its real port.</summary>
    [LoggerMessage(EventId = 1401, Level = LogLevel.Warning, Message = "Not registering this replica in Consul: {Reason}.")]
    private static partial void LogNotRegistering(ILogger logger, string reason);

    [LoggerMessage(EventId = 1402, Level = LogLevel.Information, Message = "This replica listens on every address; registering it in Consul under the host name {Host}. Set ControlPlane:AdvertiseAddress to the address workloads reach it on.")]
    private static partial void LogAdvertisingHostName(ILogger logger, string host);
}
