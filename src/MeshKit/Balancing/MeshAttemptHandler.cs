using MeshKit.Deadlines;
using MeshKit.Policy;
using MeshKit.Resilience;
using MeshKit.Telemetry;
using MeshKit.Transport;
using Polly.Timeout;

namespace MeshKit.Balancing;

/// <summary>
/// Per-attempt stage: the attempt timeout, the remaining deadline sent to the callee, and the attempt's outcome and latency
/// fed to the balancer and the outlier detector. A failed attempt counts as at least <see cref="DestinationPolicy.FailurePenalty"/>
/// of latency, so an endpoint that fails fast does not look fast. Every time it reads (latency, the attempt timeout, the
/// deadline sent on) comes from the endpoint state's clock, <see cref="EndpointStateRegistry.Time"/>.
/// </summary>
internal sealed class MeshAttemptHandler(EndpointStateRegistry states, MeshMetrics metrics) : DelegatingHandler
{
    private static readonly DestinationPolicy DefaultPolicy = new() { Destination = "*" };
    private readonly TimeProvider _time = states.Time;

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var call = MeshCall.Of(request);
        if (call?.Endpoint is not { } endpoint)
        {
            return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }

        var policy = call.Policy ?? DefaultPolicy;
        if (call.DeadlineTimestamp != 0)
        {
            request.Headers.Remove(MeshDeadline.HeaderName);
            request.Headers.TryAddWithoutValidation(MeshDeadline.HeaderName, MeshDeadline.Format(call.DeadlineTimestamp, _time));
        }

        var state = states.Get(call.Destination.Host, endpoint.Key);
        state.Started();
        var started = _time.GetTimestamp();
        using var attemptTimeout = AttemptTimeout(policy.AttemptTimeout, cancellationToken);
        HttpResponseMessage? response = null;
        var failed = true;
        var connectFailure = false;
        try
        {
            response = await base.SendAsync(request, attemptTimeout.Token).ConfigureAwait(false);
            failed = (int)response.StatusCode >= 500;
            return response;
        }
        catch (OperationCanceledException ex) when (attemptTimeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutRejectedException($"The attempt to '{call.Destination.Host}' at {endpoint.Key} took longer than its attempt timeout of {policy.AttemptTimeout} (Mesh:Policy:Destinations:{call.Destination.Host}:AttemptTimeout).", policy.AttemptTimeout, ex);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The caller gave up (or the total timeout fired): says nothing about the endpoint.
            failed = false;
            throw;
        }
        catch (HttpRequestException ex) when (ex is not MeshCallException)
        {
            // The transport failed: refused, reset (a crashed peer), a failed handshake. Nothing complete answered.
            connectFailure = true;
            throw;
        }
        finally
        {
            var now = _time.GetTimestamp();
            var latency = _time.GetElapsedTime(started, now);
            state.Finished();
            if (failed)
            {
                state.RecordLatency(latency > policy.FailurePenalty ? latency : policy.FailurePenalty, now);
                call.LastFailedEndpoint = endpoint.Key;
                if (!call.IsMirror && OutlierDetector.RecordFailure(state, policy.OutlierDetection, call.Candidates, states, now, connectFailure))
                {
                    metrics.RecordEjection(call.Destination.Host, endpoint.Key);
                    states.NotifyEjected();
                }
            }
            else
            {
                state.RecordLatency(latency, now);
                state.RecordSuccess();
            }

            call.Attempt++;
        }
    }

    /// <summary>
    /// The attempt's cancellation: the caller's token, or <paramref name="timeout"/> on the handler's clock. With the system
    /// clock that is a linked source and <see cref="CancellationTokenSource.CancelAfter(TimeSpan)"/>, as it always was; one
    /// local either way, so the request's state machine is no bigger for the injected clock.
    /// </summary>
    private CancellationTokenSource AttemptTimeout(TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (ReferenceEquals(_time, TimeProvider.System))
        {
            var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            linked.CancelAfter(timeout);
            return linked;
        }

        return new ClockTimeout(timeout, _time, cancellationToken);
    }

    /// <summary>Cancelled after a delay on another clock (a test's virtual one), or when the caller's token is.</summary>
    private sealed class ClockTimeout : CancellationTokenSource
    {
        private readonly CancellationTokenRegistration _caller;

        public ClockTimeout(TimeSpan delay, TimeProvider time, CancellationToken caller)
            : base(delay, time) =>
            _caller = caller.UnsafeRegister(static state => ((ClockTimeout)state!).Cancel(), this);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                // Waits for a running callback, so Cancel never meets a disposed source.
                _caller.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
