using System.Net.Http;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MeshKit.Identity;
using MeshKit.Hosting;
using MeshKit.Telemetry;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshKit.ControlChannel;

/// <summary>
/// Obtains the workload's first certificate before the host starts serving, then renews it at a fraction of its
/// lifetime (with jitter), from the <see cref="IWorkloadCertificateIssuer"/>: the control service, or the in-process CA of
/// test mode. Failed renewals retry with backoff while the certificate is valid; once it has expired,
/// mesh traffic fails closed and the join token is used again to recover. Every wait and every clock reading is on the
/// mesh's <see cref="TimeProvider"/>, and the jitter is drawn from the mesh's <see cref="MeshRandom"/>.
/// </summary>
internal sealed partial class CertificateRenewalService : IHostedLifecycleService, IDisposable
{
    private readonly MeshOptions _options;
    private readonly IWorkloadCertificateIssuer _issuer;
    private readonly WorkloadIdentitySource _identity;
    private readonly MeshMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly MeshRandom _random;
    private readonly ILogger _logger;
    private readonly SpiffeId _id;
    private readonly CancellationTokenSource _stopping = new();
    private Task? _loop;
    private volatile TaskCompletionSource _renewNow = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public CertificateRenewalService(
        IOptions<MeshOptions> options,
        IWorkloadCertificateIssuer issuer,
        WorkloadIdentitySource identity,
        MeshMetrics metrics,
        TimeProvider time,
        MeshRandom random,
        ILogger<CertificateRenewalService> logger)
    {
        _options = options.Value;
        _issuer = issuer;
        _identity = identity;
        _metrics = metrics;
        _time = time;
        _random = random;
        _logger = logger;
        _id = SpiffeId.Create(_options.TrustDomain, _options.Service.Namespace, _options.Service.Name!);
        identity.RenewalRequested += reason =>
        {
            LogRenewalRequested(_logger, reason);
            _renewNow.TrySetResult();
        };

        // Registered here, where certificates are obtained, so the telemetry layer knows nothing of identity.
        metrics.Meter.CreateObservableGauge<double>(
            "mesh.identity.certificate.expiry",
            () =>
            {
                var current = identity.Current;
                return current is null ? [] : [new System.Diagnostics.Metrics.Measurement<double>((current.NotAfter - time.GetUtcNow()).TotalSeconds)];
            },
            "s",
            "Seconds until the workload certificate expires.");
    }

    /// <summary>Runs before any hosted service starts (Kestrel included), so nothing serves without an identity.</summary>
    public async Task StartingAsync(CancellationToken cancellationToken)
    {
        _issuer.Prepare();
        var timeout = _options.ControlPlane.StartupTimeout;
        using var startupTimeout = new CancellationTokenSource(timeout, _time);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, startupTimeout.Token);
        Exception? last = null;
        var attempt = 0;
        while (true)
        {
            try
            {
                var identity = await IssueAsync(useToken: true, deadline.Token).ConfigureAwait(false);
                _identity.Set(identity);
                LogObtained(_logger, identity.Id.Value, identity.SerialNumber, identity.NotAfter);
                return;
            }
            catch (ControlPlaneRefusedException ex) when (ex.IsPermanent)
            {
                // A wrong token or name will not fix itself by waiting.
                throw new MeshIdentityException(
                    $"The control service at {_issuer.Describe()} refused the first certificate for {_id}: {ex.Message} "
                    + "Check Mesh:ControlPlane:JoinToken and Mesh:Service:Name/Namespace against the control service's ControlPlane:JoinTokens.",
                    ex);
            }
            catch (Exception ex) when (IsTransient(ex) && !cancellationToken.IsCancellationRequested)
            {
                last = ex;
                if (deadline.IsCancellationRequested)
                {
                    break;
                }

                LogBootstrapRetry(_logger, _issuer.Describe(), ex.Message);
                try
                {
                    await Task.Delay(Backoff(attempt++), _time, deadline.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }

        cancellationToken.ThrowIfCancellationRequested();
        throw new MeshIdentityException(
            $"Mesh:ControlPlane:StartupTimeout ({timeout}) elapsed before the control service ({_issuer.Describe()}) issued a certificate for {_id}. "
            + $"Last error: {last?.Message ?? "none"}. Check that the control service runs and that Mesh:ControlPlane:Address (or :Addresses, or :ConsulService) points at it.",
            last!);
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken)
    {
        _loop = Task.Run(() => RenewLoopAsync(_stopping.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => _stopping.Dispose();

    private async Task RenewLoopAsync(CancellationToken cancellationToken)
    {
        var failures = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            var current = _identity.Current;
            var now = _time.GetUtcNow();
            var delay = current is null ? TimeSpan.Zero : failures > 0 ? Backoff(failures - 1) : RenewalDelay(current, now, _options.Identity, _random);
            try
            {
                if (delay > TimeSpan.Zero)
                {
                    // Wait for the renewal point, or for a request to renew now, whichever comes first.
                    var renewNow = _renewNow.Task;
                    await Task.WhenAny(Task.Delay(delay, _time, cancellationToken), renewNow).ConfigureAwait(false);
                    cancellationToken.ThrowIfCancellationRequested();
                    if (renewNow.IsCompleted)
                    {
                        _renewNow = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    }
                }

                current = _identity.Current;
                var expired = current is null || current.IsExpired(_time.GetUtcNow());

                // With a valid certificate, renew over mTLS; after expiry (or revocation) only the join token can recover.
                WorkloadIdentity renewed;
                try
                {
                    renewed = await IssueAsync(useToken: expired, cancellationToken).ConfigureAwait(false);
                }
                catch (ControlPlaneRefusedException ex) when (!expired && ex.Reason == "client-certificate-invalid" && !string.IsNullOrEmpty(_options.ControlPlane.JoinToken))
                {
                    // The certificate ran out while the renewal was on its way: go straight to the join token.
                    expired = true;
                    renewed = await IssueAsync(useToken: true, cancellationToken).ConfigureAwait(false);
                }

                _identity.Set(renewed);
                _metrics.RecordRenewal(success: true);
                LogRenewed(_logger, renewed.Id.Value, renewed.SerialNumber, renewed.NotAfter, expired ? "join token" : "mTLS");
                failures = 0;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                failures++;
                _metrics.RecordRenewal(success: false);
                _identity.ReportFailure(ex.Message);
                current = _identity.Current;
                if (current is not null && current.IsExpired(_time.GetUtcNow()))
                {
                    LogExpired(_logger, current.Id.Value, current.NotAfter, ex.Message);
                }
                else if (current is null)
                {
                    // Revoked, or dropped: there is no certificate whose expiry to name.
                    LogNoCertificate(_logger, _id.Value, failures, ex.Message);
                }
                else
                {
                    LogRenewalFailed(_logger, _id.Value, failures, current.NotAfter, ex.Message);
                }
            }
        }
    }

    private async Task<WorkloadIdentity> IssueAsync(bool useToken, CancellationToken cancellationToken)
    {
        // A fresh key for every certificate: it is generated here and never leaves the process.
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        try
        {
            var csr = CertificateSigningRequests.Create(key, _id);
            var result = await _issuer.SignAsync(csr, useToken, cancellationToken).ConfigureAwait(false);
            return Build(result, key);
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    private WorkloadIdentity Build(IssuedWorkloadCertificate result, ECDsa key)
    {
        var chain = new X509Certificate2Collection();
        chain.ImportFromPem(result.CertificateChainPem);
        if (chain.Count == 0)
        {
            throw new InvalidDataException("The control service returned no certificate.");
        }

        var bundle = TrustBundle.FromPem(result.TrustBundlePem);

        // Check what we were given before using it: our identity, our key, chaining to the bundle.
        using var leafPublic = chain[0];
        var validation = SvidValidator.Validate(leafPublic, chain, bundle, _options.TrustDomain, _time.GetUtcNow());
        if (!validation.IsValid || validation.SpiffeId != _id)
        {
            throw new InvalidDataException($"The control service returned a certificate that is not a valid SVID for {_id}: {validation.Detail ?? validation.SpiffeId?.Value}");
        }

        var leaf = TlsCertificates.WithKey(leafPublic, key);
        var intermediates = new X509Certificate2Collection();
        for (var i = 1; i < chain.Count; i++)
        {
            intermediates.Add(chain[i]);
        }

        return new WorkloadIdentity(_id, leaf, intermediates, bundle, _time.GetUtcNow());
    }

    /// <summary>
    /// The wait from <paramref name="now"/> until the renewal point: the start (when the certificate was received, or its
    /// NotBefore if later) plus the lifetime left from there times <see cref="MeshIdentityOptions.RenewalFraction"/> ±
    /// <see cref="MeshIdentityOptions.RenewalJitter"/> (uniform), never negative.
    /// </summary>
    internal static TimeSpan RenewalDelay(WorkloadIdentity identity, DateTimeOffset now, MeshIdentityOptions identityOptions, MeshRandom random)
    {
        var jitter = ((random.NextDouble() * 2) - 1) * identityOptions.RenewalJitter;
        // The fraction applies to the time the certificate is usable from when we got it: a backdated NotBefore would
        // otherwise pull renewal early (with short lifetimes, to at once).
        var start = identity.ReceivedAt > identity.NotBefore ? identity.ReceivedAt : identity.NotBefore;
        var renewAt = start + ((identity.NotAfter - start) * (identityOptions.RenewalFraction + jitter));
        var delay = renewAt - now;
        return delay > TimeSpan.Zero ? delay : TimeSpan.Zero;
    }

    private TimeSpan Backoff(int attempt) => RetryBackoff.Next(attempt, _options.Identity.RetryBaseDelay, _options.Identity.RetryMaxDelay);

    private static bool IsTransient(Exception ex) =>
        ex is HttpRequestException or IOException or TimeoutException or OperationCanceledException or InvalidDataException
        || ex is ControlPlaneRefusedException { IsPermanent: false };

    [LoggerMessage(EventId = 2001, Level = LogLevel.Information, Message = "Obtained the workload certificate for {SpiffeId} (serial {Serial}, valid until {NotAfter:O}).")]
    private static partial void LogObtained(ILogger logger, string spiffeId, string serial, DateTimeOffset notAfter);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Information, Message = "Renewed the workload certificate for {SpiffeId} (serial {Serial}, valid until {NotAfter:O}) using {Credential}.")]
    private static partial void LogRenewed(ILogger logger, string spiffeId, string serial, DateTimeOffset notAfter, string credential);

    [LoggerMessage(EventId = 2007, Level = LogLevel.Warning, Message = "Getting a workload certificate for {SpiffeId} failed ({Failures} in a row); it holds none now (revoked or dropped), so it serves and calls nothing over mTLS, and retries with backoff: {Error}")]
    private static partial void LogNoCertificate(ILogger logger, string spiffeId, int failures, string error);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Warning, Message = "Renewing the workload certificate for {SpiffeId} failed ({Failures} in a row); the current certificate is valid until {NotAfter:O} and renewal retries with backoff: {Error}")]
    private static partial void LogRenewalFailed(ILogger logger, string spiffeId, int failures, DateTimeOffset notAfter, string error);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Error, Message = "The workload certificate for {SpiffeId} expired at {NotAfter:O}; mesh calls and the mesh endpoint fail closed until a new one is issued. Last error: {Error}")]
    private static partial void LogExpired(ILogger logger, string spiffeId, DateTimeOffset notAfter, string error);

    [LoggerMessage(EventId = 2006, Level = LogLevel.Information, Message = "Renewing the workload certificate now: {Reason}")]
    private static partial void LogRenewalRequested(ILogger logger, string reason);

    [LoggerMessage(EventId = 2005, Level = LogLevel.Warning, Message = "The control service ({Replicas}) did not issue the first certificate yet; retrying: {Error}")]
    private static partial void LogBootstrapRetry(ILogger logger, string replicas, string error);
}
