using MeshKit.Telemetry;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshKit.ControlChannel;

/// <summary>
/// Sends the workload's calls on canary routes to the control service every <c>Mesh:ControlPlane:TrafficReportInterval</c>,
/// for its canary analysis. Nothing is sent while no canary route is called. A report that cannot be sent is kept and
/// added to the next one (bounded like the counts themselves), so an outage delays figures rather than losing them.
/// </summary>
internal sealed partial class CanaryTrafficReporter(
    IOptions<MeshOptions> options,
    Identity.IWorkloadCertificateIssuer issuer,
    MeshMetrics metrics,
    TimeProvider time,
    ILogger<CanaryTrafficReporter> logger) : BackgroundService
{
    private bool _failing;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (issuer is not ControlPlaneClient)
        {
            return; // test mode (MeshKit.Testing): no control service to report to
        }

        using var timer = new PeriodicTimer(options.Value.ControlPlane.TrafficReportInterval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            await ReportOnceAsync(stoppingToken).ConfigureAwait(false);
        }
    }

    internal async Task ReportOnceAsync(CancellationToken cancellationToken)
    {
        if (issuer is not ControlPlaneClient controlPlane || metrics.CanaryTraffic.Take() is not { } report)
        {
            return;
        }

        try
        {
            await controlPlane.ReportTrafficAsync(report, cancellationToken).ConfigureAwait(false);
            if (_failing)
            {
                _failing = false;
                LogRecovered(logger);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            metrics.CanaryTraffic.Return(report);
            if (!_failing)
            {
                _failing = true;
                LogFailed(logger, ex.Message);
            }
        }
    }

    [LoggerMessage(EventId = 2131, Level = LogLevel.Warning, Message = "Could not send the calls on canary routes to the control service ({Error}); they are kept and sent with the next report.")]
    private static partial void LogFailed(ILogger logger, string error);

    [LoggerMessage(EventId = 2132, Level = LogLevel.Information, Message = "Reports of the calls on canary routes reach the control service again.")]
    private static partial void LogRecovered(ILogger logger);
}
