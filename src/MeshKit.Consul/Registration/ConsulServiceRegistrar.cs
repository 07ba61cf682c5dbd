using System.Net;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MeshKit.Consul;

/// <summary>
/// Registers one service instance with the local Consul agent and keeps its TTL check reported: on start it registers,
/// then every <c>TTL/3</c> it reports the current status (passing unless set otherwise); on stop it marks the check
/// critical and deregisters. If the agent forgets the instance (agent restart, reaped after an outage) it registers
/// again on the next report. Consul being unreachable never fails the host: failures are logged and retried.
/// <para>
/// Use it as a hosted service, or call <see cref="StartAsync"/> and <see cref="StopAsync"/> yourself once the
/// instance's address and port are known. Disposing without stopping leaves the instance to lapse (critical after
/// the TTL, then reaped after <c>DeregisterCriticalServiceAfter</c>), as a crash would.
/// </para>
/// </summary>
public sealed partial class ConsulServiceRegistrar : IHostedService, IAsyncDisposable, IDisposable
{
    private const string ReadyOutput = "MeshKit: the instance is ready.";
    private const string StoppingOutput = "MeshKit: the instance is stopping.";

    private readonly ConsulClient _client;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private CancellationTokenSource? _loop;
    private Task _loopTask = Task.CompletedTask;
    private volatile bool _registered;
    private volatile int _status;
    private volatile string _output;

    /// <summary>Initializes a new instance.</summary>
    /// <param name="client">The Consul client.</param>
    /// <param name="registration">
    /// The instance to register. Without a <see cref="ConsulServiceRegistration.Check"/>, a TTL check with MeshKit's
    /// defaults is added (TTL 15 s, <c>DeregisterCriticalServiceAfter</c> 1 minute). The check's initial status is the
    /// registrar's <see cref="Status"/>.
    /// </param>
    /// <param name="logger">Where registration, renewal failures and deregistration are logged.</param>
    /// <param name="initialStatus">The status reported until <see cref="SetStatusAsync"/> changes it. Default passing.</param>
    /// <exception cref="ArgumentException">The registration lacks an ID or name, or has an invalid port or TTL.</exception>
    public ConsulServiceRegistrar(ConsulClient client, ConsulServiceRegistration registration, ILogger<ConsulServiceRegistrar> logger, ConsulCheckStatus initialStatus = ConsulCheckStatus.Passing)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(registration);
        ArgumentNullException.ThrowIfNull(logger);
        registration.Validate();
        _client = client;
        _logger = logger;
        _time = client.TimeProvider;
        Registration = WithCheck(registration, registration.Check ?? new ConsulTtlCheck());
        var ttl = Registration.Check!.Ttl;
        RenewInterval = ttl / 3 > TimeSpan.FromMilliseconds(10) ? ttl / 3 : TimeSpan.FromMilliseconds(10);
        _status = (int)initialStatus;
        _output = initialStatus == ConsulCheckStatus.Passing ? ReadyOutput : "MeshKit: the instance is not ready.";
    }

    /// <summary>Gets the instance registered, with its TTL check.</summary>
    public ConsulServiceRegistration Registration { get; }

    /// <summary>Gets the instance ID.</summary>
    public string ServiceId => Registration.Id;

    /// <summary>Gets the ID of the instance's TTL check.</summary>
    public string CheckId => Registration.CheckId;

    /// <summary>Gets how often the check is reported: a third of its TTL.</summary>
    public TimeSpan RenewInterval { get; }

    /// <summary>Gets the status being reported.</summary>
    public ConsulCheckStatus Status => (ConsulCheckStatus)_status;

    /// <summary>Gets a value indicating whether the agent accepted the registration and it has not been withdrawn since.</summary>
    public bool IsRegistered => _registered;

    /// <summary>Registers the instance (a failure is logged and retried on the next report) and starts reporting its check.</summary>
    /// <param name="cancellationToken">Cancels the first registration attempt.</param>
    /// <returns>Completes after the first registration attempt.</returns>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (_loop is not null)
        {
            return;
        }

        _loop = new CancellationTokenSource();
        await ReportAsync(cancellationToken).ConfigureAwait(false);
        _loopTask = RunAsync(_loop.Token);
    }

    /// <summary>
    /// Changes the status the check reports, and reports it now when registered. Mark the instance
    /// <see cref="ConsulCheckStatus.Warning"/> or <see cref="ConsulCheckStatus.Critical"/> when the host is unhealthy or
    /// draining: Consul then leaves it out of <c>?passing</c> answers.
    /// </summary>
    /// <param name="status">The new status.</param>
    /// <param name="output">Text shown with the check in the Consul UI.</param>
    /// <param name="cancellationToken">Cancels the report (the status is still kept for the next one).</param>
    /// <returns>Completes when the status has been reported, or the attempt failed and was logged.</returns>
    public async Task SetStatusAsync(ConsulCheckStatus status, string? output = null, CancellationToken cancellationToken = default)
    {
        _output = output ?? (status == ConsulCheckStatus.Passing ? ReadyOutput : $"MeshKit: the instance reports {ConsulWire.FormatStatus(status)}.");
        _status = (int)status;
        if (_loop is not null)
        {
            await ReportAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Stops reporting, marks the check critical and deregisters the instance. Failures are logged, not thrown.</summary>
    /// <param name="cancellationToken">Cancels the deregistration (the instance then lapses with its TTL).</param>
    /// <returns>Completes when the instance is deregistered or the attempt failed.</returns>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await StopLoopAsync().ConfigureAwait(false);
        try
        {
            await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        try
        {
            _status = (int)ConsulCheckStatus.Critical;
            _output = StoppingOutput;
            if (!_registered)
            {
                return;
            }

            // Critical first: if the deregistration fails, watchers still drop the instance at once.
            await _client.UpdateCheckAsync(CheckId, ConsulCheckStatus.Critical, StoppingOutput, cancellationToken).ConfigureAwait(false);
            await _client.DeregisterServiceAsync(ServiceId, cancellationToken).ConfigureAwait(false);
            _registered = false;
            LogDeregistered(_logger, ServiceId, Registration.Name);
        }
        catch (ConsulException ex)
        {
            LogDeregisterFailed(_logger, ex, ServiceId);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            LogDeregisterFailed(_logger, null, ServiceId);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Stops reporting without deregistering.</summary>
    /// <returns>Completes when the report loop has ended.</returns>
    public async ValueTask DisposeAsync()
    {
        await StopLoopAsync().ConfigureAwait(false);
    }

    /// <summary>Stops reporting without deregistering or waiting (for containers disposed synchronously).</summary>
    public void Dispose() => Interlocked.Exchange(ref _loop, null)?.Cancel();

    private static ConsulServiceRegistration WithCheck(ConsulServiceRegistration registration, ConsulTtlCheck check) => new()
    {
        Id = registration.Id,
        Name = registration.Name,
        Address = registration.Address,
        Port = registration.Port,
        Tags = registration.Tags,
        Meta = registration.Meta,
        Weights = registration.Weights,
        Check = check,
    };

    private static bool IsUnknownCheck(ConsulException error) =>
        error.StatusCode == HttpStatusCode.NotFound
        || (error.StatusCode == HttpStatusCode.InternalServerError
            && (error.Message.Contains("does not have associated TTL", StringComparison.OrdinalIgnoreCase)
                || error.Message.Contains("Unknown check", StringComparison.OrdinalIgnoreCase)));

    private async Task StopLoopAsync()
    {
        var loop = Interlocked.Exchange(ref _loop, null);
        if (loop is null)
        {
            return;
        }

        await loop.CancelAsync().ConfigureAwait(false);
        await _loopTask.ConfigureAwait(false);
        loop.Dispose();
    }

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(RenewInterval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                await ReportAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private async Task ReportAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_registered)
            {
                try
                {
                    await _client.UpdateCheckAsync(CheckId, Status, _output, cancellationToken).ConfigureAwait(false);
                    return;
                }
                catch (ConsulException ex) when (IsUnknownCheck(ex))
                {
                    _registered = false;
                    LogForgotten(_logger, ServiceId, CheckId);
                }
                catch (ConsulException ex)
                {
                    LogReportFailed(_logger, ex, CheckId, ConsulWire.FormatStatus(Status), RenewInterval.TotalMilliseconds);
                    return;
                }
            }

            await RegisterAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task RegisterAsync(CancellationToken cancellationToken)
    {
        var status = Status;
        var check = Registration.Check!;
        var registration = WithCheck(Registration, new ConsulTtlCheck
        {
            Id = check.Id,
            Name = check.Name,
            Notes = check.Notes,
            Ttl = check.Ttl,
            DeregisterCriticalServiceAfter = check.DeregisterCriticalServiceAfter,
            InitialStatus = status,
        });
        try
        {
            await _client.RegisterServiceAsync(registration, cancellationToken).ConfigureAwait(false);
            _registered = true;
            LogRegistered(_logger, ServiceId, Registration.Name, Registration.Address ?? string.Empty, Registration.Port, CheckId, check.Ttl.TotalSeconds, ConsulWire.FormatStatus(status));
        }
        catch (ConsulException ex)
        {
            LogRegisterFailed(_logger, ex, ServiceId, Registration.Name, RenewInterval.TotalMilliseconds);
        }
    }

    [LoggerMessage(EventId = 4130, Level = LogLevel.Information, Message = "Registered {ServiceId} ({Service}) at '{Address}':{Port} in Consul with TTL check {CheckId} ({TtlSeconds} s), {Status}.")]
    private static partial void LogRegistered(ILogger logger, string serviceId, string service, string address, int port, string checkId, double ttlSeconds, string status);

    [LoggerMessage(EventId = 4131, Level = LogLevel.Warning, Message = "Could not register {ServiceId} ({Service}) in Consul; retrying in {DelayMs:0} ms.")]
    private static partial void LogRegisterFailed(ILogger logger, Exception exception, string serviceId, string service, double delayMs);

    [LoggerMessage(EventId = 4132, Level = LogLevel.Warning, Message = "Could not report TTL check {CheckId} as {Status} to Consul; retrying in {DelayMs:0} ms.")]
    private static partial void LogReportFailed(ILogger logger, Exception exception, string checkId, string status, double delayMs);

    [LoggerMessage(EventId = 4133, Level = LogLevel.Warning, Message = "Consul no longer knows {ServiceId} (check {CheckId}), probably after an agent restart or reaping; registering it again.")]
    private static partial void LogForgotten(ILogger logger, string serviceId, string checkId);

    [LoggerMessage(EventId = 4134, Level = LogLevel.Information, Message = "Deregistered {ServiceId} ({Service}) from Consul.")]
    private static partial void LogDeregistered(ILogger logger, string serviceId, string service);

    [LoggerMessage(EventId = 4135, Level = LogLevel.Warning, Message = "Could not deregister {ServiceId} from Consul; it will turn critical after its TTL and be reaped after DeregisterCriticalServiceAfter.")]
    private static partial void LogDeregisterFailed(ILogger logger, Exception? exception, string serviceId);
}
