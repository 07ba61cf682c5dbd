using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using MeshKit.Balancing;
using MeshKit.Deadlines;
using MeshKit.Identity;
using MeshKit.Policy;
using MeshKit.Resilience;
using MeshKit.Routing;
using MeshKit.Telemetry;
using MeshKit.Transport;
using Polly;

namespace MeshKit.Client;

/// <summary>
/// The call path of one destination under one policy version: built once by <see cref="CallPathBuilder"/>, then every
/// mesh call to the destination runs through it. The stages are plain objects called in this order, top-down:
/// <list type="number">
/// <item>the call: fail closed without an identity; MeshKit's logical-call span and golden metrics;</item>
/// <item>route (<see cref="RouteStage"/>): route, subset, mirror copy, faults;</item>
/// <item>resilience (<see cref="ResilienceStage"/>): the concurrency limit, one cancellation source carrying the deadline
/// (the smallest of the total timeout, the caller's propagated deadline and the attempt timeout), the retry budget;</item>
/// <item>endpoint choice (<see cref="EndpointStage"/>);</item>
/// <item>the attempt: the deadline sent on, the send, the outcome fed back to the balancer and the outlier detector;</item>
/// <item>transport (<see cref="EndpointConnectionPool"/>): mTLS to the chosen endpoint, the logical name as TLS host.</item>
/// </list>
/// Only a call whose first attempt failed in a way the policy retries enters the retry phase (Polly's retry strategy).
/// One async method per call; every stage before the send is synchronous when discovery already knows the destination.
/// </summary>
internal sealed class CallPath
{
    private readonly MeshDestination _destination;
    private readonly RouteStage _route;
    private readonly ResilienceStage _resilience;
    private readonly EndpointStage _endpoints;
    private readonly MeshConnectionPools _pools;
    private readonly WorkloadIdentitySource _identity;
    private readonly MeshMetrics _metrics;
    private readonly MirrorSender _mirror;
    private readonly MeshClientSettings _settings;
    private readonly TimeProvider _time;

    internal CallPath(
        MeshDestination destination,
        RouteStage route,
        ResilienceStage resilience,
        EndpointStage endpoints,
        MeshConnectionPools pools,
        WorkloadIdentitySource identity,
        MeshMetrics metrics,
        MirrorSender mirror,
        MeshClientSettings settings,
        TimeProvider time)
    {
        _destination = destination;
        _route = route;
        _resilience = resilience;
        _endpoints = endpoints;
        _pools = pools;
        _identity = identity;
        _metrics = metrics;
        _mirror = mirror;
        _settings = settings;
        _time = time;
    }

    /// <summary>Gets the destination's policy this path was built from.</summary>
    public DestinationPolicy Policy => _route.Policy;

    /// <summary>Sends one mesh call: the logical call, with its retries.</summary>
    public async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        request.Version = _settings.HttpVersion;
        request.VersionPolicy = HttpVersionPolicy.RequestVersionOrLower;
        var started = _time.GetTimestamp();
        using var activity = MeshTelemetry.Source.StartActivity(_destination.SpanName, ActivityKind.Internal);
        var call = new Call(this, request, activity is null ? null : new MeshAttemptTags(_destination.Service), cancellationToken);
        if (activity is not null)
        {
            activity.SetTag(MeshTelemetry.Attributes.DestinationService, _destination.Service);
            activity.SetTag(MeshTelemetry.Attributes.DestinationNamespace, _destination.Namespace);
            activity.SetTag("http.request.method", request.Method.Method);
        }

        HttpResponseMessage? response = null;
        var outcome = "error";
        try
        {
            response = await call.RunAsync().ConfigureAwait(false);
            outcome = response.IsSuccessStatusCode ? "success" : "http_error";
            return response;
        }
        catch (MeshCallException ex)
        {
            outcome = ex.Reason;
            activity?.SetTag("error.type", ex.Reason);
            activity?.SetStatus(ActivityStatusCode.Error, ex.Message);
            throw;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            outcome = "cancelled";
            throw;
        }
        catch (Exception ex)
        {
            outcome = "transport_error";
            activity?.SetTag("error.type", ex.GetType().FullName);
            activity?.SetStatus(ActivityStatusCode.Error, ex.Message);
            throw;
        }
        finally
        {
            call.Dispose();
            var status = response is null ? 0 : (int)response.StatusCode;
            var statusClass = response is null ? "none" : MeshMetrics.StatusClass(status);
            _metrics.RecordClientRequest(_settings.SourceService, _destination.Service, call.Subset, statusClass, outcome, _time.GetElapsedTime(started).TotalSeconds);
            if (activity is not null)
            {
                activity.SetTag(MeshTelemetry.Attributes.Route, call.Route?.Name);
                activity.SetTag(MeshTelemetry.Attributes.Subset, call.Subset);
                activity.SetTag(MeshTelemetry.Attributes.SubsetReason, call.SubsetReason);
                activity.SetTag(MeshTelemetry.Attributes.Attempts, call.Attempts);
                activity.SetTag(MeshTelemetry.Attributes.RetryReason, call.RetryReason);
                activity.SetTag(MeshTelemetry.Attributes.Outcome, outcome);
                activity.SetTag(MeshTelemetry.Attributes.Endpoint, call.Endpoint);
                if (response is not null)
                {
                    activity.SetTag("http.response.status_code", status);
                    if (status >= 500)
                    {
                        activity.SetStatus(ActivityStatusCode.Error);
                    }
                }
            }
        }
    }

    /// <summary>
    /// Sends a mirror copy to a subset: endpoint choice, one attempt and the transport only (no route, no limits, no
    /// retries, no telemetry of its own, no ejection), within the destination's total timeout.
    /// </summary>
    public async Task SendMirrorAsync(HttpRequestMessage copy, RoutePolicy route, string subset)
    {
        copy.Version = _settings.HttpVersion;
        copy.VersionPolicy = HttpVersionPolicy.RequestVersionOrLower;
        using var timeout = new CancellationTokenSource(Policy.Timeout, _time);
        var choice = await _endpoints.ChooseAsync(subset, route.SubsetKey, "mirror", route.Name, null, timeout.Token).ConfigureAwait(false);
        var pool = _pools.Get(_destination, choice.Endpoint);
        var connections = pool.Rent(GetIdentity());
        var state = _endpoints.Begin(choice.Endpoint);
        var started = _time.GetTimestamp();
        var failed = true;
        try
        {
            using var response = await connections.Invoker.SendAsync(copy, timeout.Token).ConfigureAwait(false);
            failed = (int)response.StatusCode >= 500;
        }
        finally
        {
            pool.Return(connections);
            _endpoints.End(state, choice, started, failed, connectFailure: false, ejects: false);
        }
    }

    private WorkloadIdentity GetIdentity()
    {
        try
        {
            // Fail closed: no identity, no call.
            return _identity.GetValid();
        }
        catch (MeshIdentityException ex)
        {
            throw new MeshCallException("identity_unavailable", $"The mesh call to {_destination} was not made: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// One call's state: its route decision, its cancellation (one source, re-armed per attempt), its attempts. It is also
    /// what the retry phase retries.
    /// </summary>
    private sealed class Call(CallPath path, HttpRequestMessage request, MeshAttemptTags? tags, CancellationToken cancellationToken) : IRetriedCall, IDisposable
    {
        private CancellationTokenSource? _cancellation;
        private CancellationTokenRegistration _callerRegistration;
        private CancellationTokenSource? _retryPhase;
        private long _deadline;
        private bool _attemptArmed;
        private string? _lastFailed;
        private Outcome<HttpResponseMessage>? _firstOutcome;

        public RoutePolicy? Route { get; private set; }

        public string? Subset { get; private set; }

        public string SubsetReason { get; private set; } = "none";

        public int Attempts { get; private set; }

        public string? RetryReason { get; private set; }

        public string? Endpoint { get; private set; }

        public HttpMethod Method => request.Method;

        public async Task<HttpResponseMessage> RunAsync()
        {
            path.GetIdentity();

            // 2. Route.
            var decision = path._route.Decide(request);
            Route = decision.Route;
            Subset = decision.Subset;
            SubsetReason = decision.SubsetReason;
            if (decision.Mirror && decision.Route.Mirror is { } mirror)
            {
                path._mirror.TrySend(path, request, decision.Route, mirror.Subset);
            }

            if (decision.Route.Fault is { } fault && path._route.DrawFault(fault) is var drawn && (drawn.Delay > TimeSpan.Zero || drawn.AbortStatus != 0))
            {
                if (drawn.Delay > TimeSpan.Zero)
                {
                    await Task.Delay(drawn.Delay, path._time, cancellationToken).ConfigureAwait(false);
                }

                if (drawn.AbortStatus != 0)
                {
                    return RouteStage.Abort(request, drawn.AbortStatus, decision.Route.Name, path._destination.Host);
                }
            }

            // 3. Resilience: the concurrency limit, the budget, one cancellation source with the call's deadline.
            using var lease = await path._resilience.EnterAsync(cancellationToken).ConfigureAwait(false);
            path._resilience.RecordRequest();
            var time = path._time;
            _deadline = time.GetTimestamp() + (long)(path._resilience.CallTimeout().TotalSeconds * time.TimestampFrequency);

            // 4–6. The first attempt: no retry machinery unless it failed in a way the policy retries.
            var first = await AttemptAsync(cancellationToken).ConfigureAwait(false);
            if (path._resilience.Retries && path._resilience.ShouldRetry(first, request.Method))
            {
                _firstOutcome = first;
                _retryPhase = new CancellationTokenSource(Remaining(), time);
                var registration = cancellationToken.UnsafeRegister(static state => ((CancellationTokenSource)state!).Cancel(), _retryPhase);
                try
                {
                    first = await path._resilience.RetryAsync(this, _retryPhase.Token).ConfigureAwait(false);
                }
                finally
                {
                    await registration.DisposeAsync().ConfigureAwait(false);
                }
            }

            return Finish(first);
        }

        public Outcome<HttpResponseMessage>? TakeFirstOutcome()
        {
            var first = _firstOutcome;
            _firstOutcome = null;
            return first;
        }

        public void OnRetry(string reason) => RetryReason = reason;

        /// <summary>
        /// One attempt: endpoint choice, the deadline sent on, the send, the feedback. Never throws: the outcome carries the
        /// error. The attempt's own cancellation source carries the deadline, so the retry phase's token is not needed here.
        /// </summary>
        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
        public async ValueTask<Outcome<HttpResponseMessage>> AttemptAsync(CancellationToken retryPhaseToken)
        {
            _ = retryPhaseToken;
            var time = path._time;
            if (Remaining() <= TimeSpan.Zero)
            {
                return Outcome.FromException<HttpResponseMessage>(TotalTimeout(null));
            }

            EndpointChoice choice;
            WorkloadIdentity identity;
            try
            {
                identity = path.GetIdentity();
                choice = await path._endpoints.ChooseAsync(Subset, Route!.SubsetKey, SubsetReason, Route.Name, _lastFailed, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                return Outcome.FromException<HttpResponseMessage>(ex);
            }

            var endpoint = choice.Endpoint;
            Endpoint = endpoint.Key;
            if (tags is not null)
            {
                tags.Route = Route!.Name;
                tags.Subset = Subset;
                tags.Attempt = Attempts;
                tags.Endpoint = endpoint.Key;
                tags.PeerAddress = endpoint.PeerAddress;
                tags.PeerPort = (endpoint.EndPoint as System.Net.IPEndPoint)?.Port ?? 0;
                tags.RetryReason = Attempts > 0 ? RetryReason : null;
                request.Options.Set(MeshAttemptTags.OptionsKey, tags);
            }

            request.Headers.Remove(MeshDeadline.HeaderName);
            request.Headers.TryAddWithoutValidation(MeshDeadline.HeaderName, MeshDeadline.Format(_deadline, time));
            var token = ArmAttempt(path.Policy.AttemptTimeout);
            var pool = path._pools.Get(path._destination, endpoint);
            var connections = pool.Rent(identity);
            var state = path._endpoints.Begin(endpoint);
            var started = time.GetTimestamp();
            var failed = true;
            var connectFailure = false;
            try
            {
                var response = await connections.Invoker.SendAsync(request, token).ConfigureAwait(false);
                failed = (int)response.StatusCode >= 500;
                return Outcome.FromResult(response);
            }
            catch (OperationCanceledException ex) when (cancellationToken.IsCancellationRequested)
            {
                // The caller gave up: says nothing about the endpoint.
                failed = false;
                return Outcome.FromException<HttpResponseMessage>(ex);
            }
            catch (OperationCanceledException ex) when (_cancellation!.IsCancellationRequested)
            {
                if (!_attemptArmed)
                {
                    failed = false;
                    return Outcome.FromException<HttpResponseMessage>(TotalTimeout(ex));
                }

                var host = path._destination.Host;
                return Outcome.FromException<HttpResponseMessage>(new AttemptTimeoutException(
                    $"The attempt to '{host}' at {endpoint.Key} took longer than its attempt timeout of {path.Policy.AttemptTimeout} (Mesh:Policy:Destinations:{host}:AttemptTimeout).",
                    ex));
            }
            catch (HttpRequestException ex) when (ex is not MeshCallException)
            {
                // The transport failed: refused, reset (a crashed peer), a failed handshake. Nothing complete answered.
                connectFailure = true;
                return Outcome.FromException<HttpResponseMessage>(ex);
            }
            catch (Exception ex)
            {
                return Outcome.FromException<HttpResponseMessage>(ex);
            }
            finally
            {
                pool.Return(connections);
                path._endpoints.End(state, choice, started, failed, connectFailure, ejects: true);
                if (failed)
                {
                    _lastFailed = endpoint.Key;
                }

                Attempts++;
            }
        }

        public void Dispose()
        {
            _callerRegistration.Dispose();
            _cancellation?.Dispose();
            _retryPhase?.Dispose();
        }

        private TimeSpan Remaining() => path._time.GetElapsedTime(path._time.GetTimestamp(), _deadline);

        /// <summary>
        /// The call's one cancellation source, armed for this attempt with the smaller of the attempt timeout and the time
        /// left; a fresh one only when the previous attempt's timeout fired it.
        /// </summary>
        private CancellationToken ArmAttempt(TimeSpan attemptTimeout)
        {
            var remaining = Remaining();
            _attemptArmed = attemptTimeout < remaining;
            var delay = _attemptArmed ? attemptTimeout : remaining;
            if (_cancellation is { IsCancellationRequested: false } current)
            {
                current.CancelAfter(delay);
                return current.Token;
            }

            _callerRegistration.Dispose();
            _cancellation?.Dispose();
            _cancellation = new CancellationTokenSource(delay, path._time);
            _callerRegistration = cancellationToken.UnsafeRegister(static state => ((CancellationTokenSource)state!).Cancel(), _cancellation);
            return _cancellation.Token;
        }

        private MeshCallException TotalTimeout(Exception? inner)
        {
            var host = path._destination.Host;
            return new MeshCallException(
                "timeout",
                $"The call to '{host}' took longer than its total timeout of {path.Policy.Timeout} (Mesh:Policy:Destinations:{host}:Timeout, or the caller's deadline), after {Attempts} attempt(s).",
                inner);
        }

        private HttpResponseMessage Finish(Outcome<HttpResponseMessage> outcome)
        {
            if (outcome.Result is { } response)
            {
                return response;
            }

            var error = outcome.Exception!;
            if (error is OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                // Polly's back-off was cut by the call's deadline.
                error = TotalTimeout(error);
            }
            else if (error is AttemptTimeoutException timeout)
            {
                error = new MeshCallException("timeout", timeout.Message, timeout);
            }

            ExceptionDispatchInfo.Throw(error);
            return null!;
        }
    }
}

/// <summary>Per-client settings of mesh calls, resolved once.</summary>
internal sealed class MeshClientSettings(Version httpVersion, string sourceService)
{
    public Version HttpVersion { get; } = httpVersion;

    public string SourceService { get; } = sourceService;
}
