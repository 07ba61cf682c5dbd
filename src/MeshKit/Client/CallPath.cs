using System.Collections.Concurrent;
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

    /// <summary>Sends one mesh call: the logical call, with its retries. The one async method of a call.</summary>
    public async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var upgrade = ProtocolUpgrade.SetVersion(request, _settings.HttpVersion, _destination.Host);
        var time = _time;

        // 1. The call: MeshKit's logical span (only when someone listens) and, below, the golden metrics.
        var activity = MeshTelemetry.Source.StartActivity(_destination.SpanName, ActivityKind.Internal);
        var call = Call.Rent(this, request, activity is null ? null : new MeshAttemptTags(_destination.Service), cancellationToken);
        call.Started = time.GetTimestamp();
        if (activity is not null)
        {
            activity.SetTag(MeshTelemetry.Attributes.DestinationService, _destination.Service);
            activity.SetTag(MeshTelemetry.Attributes.DestinationNamespace, _destination.Namespace);
            activity.SetTag("http.request.method", request.Method.Method);
        }

        try
        {
            GetIdentity();

            // 2. Route.
            var decision = _route.Decide(request);
            call.Route = decision.Route;
            call.Subset = decision.Subset;
            call.SubsetReason = decision.SubsetReason;
            var mirrorSubset = decision.Mirror ? decision.Route.Mirror?.Subset : null;
            if (request.Content is { } content)
            {
                // A body is streamed through and kept up to the buffer limit, so a retry or a mirror copy can send it again.
                call.WrapBody(content, _resilience.Retries || mirrorSubset is not null ? _settings.RequestBufferLimit : 0);
            }
            else if (mirrorSubset is not null)
            {
                _mirror.TrySend(this, request, decision.Route, mirrorSubset);
            }

            if (decision.Route.Fault is { } fault && _route.DrawFault(fault) is { } drawn && (drawn.Delay > TimeSpan.Zero || drawn.AbortStatus != 0)
                && await FaultAsync(call, drawn, cancellationToken).ConfigureAwait(false) is { } aborted)
            {
                return call.Answered(aborted);
            }

            // 3. Resilience: the call's deadline (carried by one cancellation source; a wait in the queue counts in it),
            // the concurrency limit, the budget.
            var timeout = _resilience.CallTimeout(out var propagated);
            call.StartDeadline(timeout, propagated);
            var entering = _resilience.EnterAsync(timeout, cancellationToken);
            call.Permit = entering.IsCompletedSuccessfully ? entering.Result : await entering.AsTask().ConfigureAwait(false);
            _resilience.RecordRequest();

            // 4–6. The first attempt, in this state machine when its endpoint is known at once; no retry machinery unless
            // it failed in a way the policy retries.
            Outcome<HttpResponseMessage> first;
            if (call.StartAttempt(out var ended, out var choosing) is { } sending)
            {
                try
                {
                    first = call.EndAttempt(await sending.ConfigureAwait(false), null);
                }
                catch (Exception ex)
                {
                    first = call.EndAttempt(null, ex);
                }
            }
            else
            {
                first = ended ?? await call.AttemptAfterChoiceAsync(choosing).ConfigureAwait(false);
            }

            if (mirrorSubset is not null && call.Body is not null)
            {
                // A body is mirrored once the first attempt has sent it whole (and kept it).
                _mirror.TrySend(this, request, decision.Route, mirrorSubset);
            }

            return call.Answered(call.Finish(_resilience.Retries && !upgrade && _resilience.ShouldRetry(first, call)
                ? await call.RetryAsync(first).ConfigureAwait(false)
                : first));
        }
        catch (MeshCallException ex) when (call.IsGrpc)
        {
            // A gRPC caller gets the refusal in gRPC's terms (a Trailers-Only answer): DEADLINE_EXCEEDED for a timeout,
            // UNAVAILABLE otherwise, the explanation in grpc-message (the RpcException's Status.Detail).
            call.OutcomeName = ex.Reason;
            activity?.SetTag("error.type", ex.Reason);
            activity?.SetStatus(ActivityStatusCode.Error, ex.Message);
            return call.AnsweredInGrpc(GrpcStatus.Answer(request, ex.Reason == MeshCallReasons.Timeout ? GrpcStatus.DeadlineExceeded : GrpcStatus.Unavailable, ex.Message));
        }
        catch (MeshCallException ex)
        {
            call.OutcomeName = ex.Reason;
            activity?.SetTag("error.type", ex.Reason);
            activity?.SetStatus(ActivityStatusCode.Error, ex.Message);
            throw;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            call.OutcomeName = "cancelled";
            throw;
        }
        catch (Exception ex)
        {
            call.OutcomeName = "transport_error";
            activity?.SetTag("error.type", ex.GetType().FullName);
            activity?.SetStatus(ActivityStatusCode.Error, ex.Message);
            throw;
        }
        finally
        {
            call.Permit?.Dispose();
            var response = call.Response;
            var outcome = call.OutcomeName;
            var status = response is null ? 0 : (int)response.StatusCode;
            var statusClass = response is null ? "none" : MeshMetrics.StatusClass(status);
            var grpcStatus = response is null ? GrpcStatus.None : call.GrpcStatusCode;
            if (response is not null && Policy.IdleTimeout > TimeSpan.Zero && call.OutcomeName == "success")
            {
                // Opt-in: a response body that stops delivering data is ended after the destination's idle timeout.
                response.Content = new IdleResponseBody(response.Content, Policy.IdleTimeout, time, _destination.Host);
            }

            var grpcEnd = call.TakeGrpcEnd();
            var handedOn = false;
            if (grpcEnd is not null && response is not null)
            {
                // A gRPC call whose status comes in trailers: its metrics, outcome and span end with the status.
                grpcEnd.Attach(response, new GrpcCallEnd.GoldenMetrics(_metrics, time, _settings.SourceService, _destination.Service, call.Subset, statusClass, outcome, call.Started, call.Route?.Canary is null ? null : call.Route.Name, _destination.Host), activity);
                handedOn = true;
            }
            else
            {
                grpcEnd?.Abandon();
                _metrics.RecordClientRequest(_settings.SourceService, _destination.Service, call.Subset, statusClass, outcome, time.GetElapsedTime(call.Started).TotalSeconds, grpcStatus);
            }

            if (activity is not null)
            {
                activity.SetTag(MeshTelemetry.Attributes.Route, call.Route?.Name);
                activity.SetTag(MeshTelemetry.Attributes.Subset, call.Subset);
                activity.SetTag(MeshTelemetry.Attributes.SubsetReason, call.SubsetReason);
                activity.SetTag(MeshTelemetry.Attributes.Attempts, TagValues.Box(call.Attempts));
                activity.SetTag(MeshTelemetry.Attributes.RetryReason, call.RetryReason);
                activity.SetTag(MeshTelemetry.Attributes.Outcome, outcome);
                activity.SetTag(MeshTelemetry.Attributes.Endpoint, call.Endpoint);
                if (response is not null)
                {
                    activity.SetTag("http.response.status_code", TagValues.Box(status));
                    if (status >= 500)
                    {
                        activity.SetStatus(ActivityStatusCode.Error);
                    }

                    if (grpcStatus != GrpcStatus.None)
                    {
                        // OpenTelemetry's RPC conventions: every status but OK is an error of the call (not of the endpoint).
                        activity.SetTag("rpc.system", "grpc");
                        activity.SetTag(MeshTelemetry.Attributes.GrpcStatusCode, TagValues.Box(grpcStatus));
                        if (grpcStatus != 0)
                        {
                            activity.SetStatus(ActivityStatusCode.Error);
                        }
                    }
                }
            }

            call.Return();
            if (!handedOn)
            {
                activity?.Dispose();
            }
        }
    }

    /// <summary>A route's fault: waits its delay on the mesh's clock, then answers its abort, if it drew one.</summary>
    private async Task<HttpResponseMessage?> FaultAsync(Call call, FaultDecision fault, CancellationToken cancellationToken)
    {
        if (fault.Delay > TimeSpan.Zero)
        {
            await Task.Delay(fault.Delay, _time, cancellationToken).ConfigureAwait(false);
        }

        return fault.AbortStatus == 0 ? null : RouteStage.Abort(call.Request, fault.AbortStatus, call.Route!.Name, _destination.Host);
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
            throw new MeshCallException(MeshCallReasons.IdentityUnavailable, $"The mesh call to {_destination} was not made: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// One call's state (pooled: a call allocates none in the steady state): its route decision, its one cancellation
    /// source (re-armed per attempt, reset and reused by the next call when the request has no body), its attempts. It is also what the retry phase
    /// retries.
    /// </summary>
    private sealed class Call : IRetriedCall
    {
        private static readonly ConcurrentBag<Call> Pool = [];
        private CallPath _path = null!;
        private HttpRequestMessage _request = null!;
        private MeshAttemptTags? _tags;
        private CancellationToken _cancellationToken;
        private CancellationTokenSource? _cancellation;
        private TimeProvider? _cancellationClock;
        private CancellationTokenRegistration _callerRegistration;
        private long _deadline;
        private bool _deadlinePropagated;
        private bool _attemptArmed;
        private string? _lastFailed;
        private Outcome<HttpResponseMessage>? _firstOutcome;

        // The attempt under way (one at a time), from Send to EndAttempt.
        private WorkloadIdentity? _workload;
        private EndpointChoice _choice;
        private EndpointConnectionPool? _pool;
        private EndpointConnectionPool.PooledConnections _connections;
        private EndpointState? _state;
        private long _attemptStarted;
        private GrpcCallEnd? _grpcEnd;

        public long Started { get; set; }

        public ConcurrencyPermit? Permit { get; set; }

        public HttpResponseMessage? Response { get; private set; }

        public string OutcomeName { get; set; } = "error";

        public RoutePolicy? Route { get; set; }

        public string? Subset { get; set; }

        public string SubsetReason { get; set; } = "none";

        public int Attempts { get; private set; }

        public string? RetryReason { get; private set; }

        public string? Endpoint { get; private set; }

        /// <summary>Gets the gRPC status of the last attempt's Trailers-Only answer, or <see cref="GrpcStatus.None"/>.</summary>
        public int GrpcStatusCode { get; private set; } = GrpcStatus.None;

        public HttpMethod Method => _request.Method;

        public HttpRequestMessage Request => _request;

        /// <summary>Gets whether the request is a gRPC call (content type <c>application/grpc</c>).</summary>
        public bool IsGrpc { get; private set; }

        /// <summary>Gets the request body as MeshKit wraps it, when the request has one.</summary>
        public RequestBody? Body { get; private set; }

        /// <summary>Gets whether the request can be sent again: no body, or a body not started or kept whole.</summary>
        public bool CanResend => Body is not { } body || body.CanResend;

        /// <summary>Gets whether an attempt began to send the request body.</summary>
        public bool BodyStarted => Body is { Started: true };

        /// <summary>Wraps the request's body (see <see cref="RequestBody"/>); its timer pauses while the caller produces the body.</summary>
        public void WrapBody(HttpContent content, int bufferLimit)
        {
            Body = new RequestBody(content, bufferLimit, new AttemptTimer(_path._time));
            _request.Content = Body;
        }

        /// <summary>Takes the pending end of a gRPC call whose status comes in trailers (see <see cref="GrpcCallEnd"/>), if any.</summary>
        public GrpcCallEnd? TakeGrpcEnd()
        {
            var end = _grpcEnd;
            _grpcEnd = null;
            return end;
        }

        /// <summary>Records the call's gRPC answer made by MeshKit for a refusal (the outcome names the reason).</summary>
        public HttpResponseMessage AnsweredInGrpc(HttpResponseMessage response)
        {
            Response = response;
            GrpcStatusCode = GrpcStatus.Read(response);
            return response;
        }

        /// <summary>Records the call's answer for its metrics and span.</summary>
        public HttpResponseMessage Answered(HttpResponseMessage response)
        {
            Response = response;
            OutcomeName = response.IsSuccessStatusCode || response.StatusCode == System.Net.HttpStatusCode.SwitchingProtocols ? "success" : "http_error";
            return response;
        }

        public static Call Rent(CallPath path, HttpRequestMessage request, MeshAttemptTags? tags, CancellationToken cancellationToken)
        {
            var call = Pool.TryTake(out var pooled) ? pooled : new Call();
            call._path = path;
            call._request = request;
            call._tags = tags;
            call._cancellationToken = cancellationToken;
            call.IsGrpc = request.Content is { } content && GrpcStatus.IsGrpc(content);
            return call;
        }

        /// <summary>Clears the call and keeps its cancellation source for the next one when it was never cancelled.</summary>
        public void Return()
        {
            _callerRegistration.Dispose();
            _callerRegistration = default;
            Body?.Timer.Release();
            Body?.ReleaseRecording();
            if (_cancellation is { } cancellation)
            {
                if (_request.Content is not null && Body is not { SendingEnded: true })
                {
                    // A request body may still be streaming on this source's token after the response headers (a gRPC
                    // client or bidirectional stream): the source is left to it, disarmed, and never reset for another call.
                    // A body that was sent whole (a unary call) is done with it: the source is reset and reused.
                    cancellation.CancelAfter(Timeout.InfiniteTimeSpan);
                    _cancellation = null;
                }
                else if (!cancellation.TryReset())
                {
                    cancellation.Dispose();
                    _cancellation = null;
                }
            }

            _path = null!;
            _request = null!;
            _tags = null;
            _cancellationToken = default;
            _deadline = 0;
            _deadlinePropagated = false;
            _grpcEnd = null;
            Body = null;
            IsGrpc = false;
            _attemptArmed = false;
            _lastFailed = null;
            _firstOutcome = null;
            Started = 0;
            Permit = null;
            Response = null;
            OutcomeName = "error";
            Route = null;
            Subset = null;
            SubsetReason = "none";
            Attempts = 0;
            RetryReason = null;
            Endpoint = null;
            GrpcStatusCode = GrpcStatus.None;
            Pool.Add(this);
        }

        /// <summary>
        /// Starts the call's deadline: the call timeout from now, on the mesh's clock; <paramref name="propagated"/> when it is
        /// the deadline the caller's own caller sent (then a gRPC call sends it on as <c>grpc-timeout</c>).
        /// </summary>
        public void StartDeadline(TimeSpan timeout, bool propagated)
        {
            var time = _path._time;
            _deadline = time.GetTimestamp() + (long)(timeout.TotalSeconds * time.TimestampFrequency);
            _deadlinePropagated = propagated;
        }

        /// <summary>The retry phase: Polly's retry strategy, which judges the first outcome before any further attempt.</summary>
        public async Task<Outcome<HttpResponseMessage>> RetryAsync(Outcome<HttpResponseMessage> first)
        {
            _firstOutcome = first;

            // Polly's back-off waits on the call's deadline and the caller's token (rare: only failed calls get here).
            using var deadline = new CancellationTokenSource(Remaining() > TimeSpan.Zero ? Remaining() : TimeSpan.Zero, _path._time);
            using var registration = _cancellationToken.UnsafeRegister(static state => ((CancellationTokenSource)state!).Cancel(), deadline);
            return await _path._resilience.RetryAsync(this, deadline.Token).ConfigureAwait(false);
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
        /// error. The call's cancellation source carries the deadline, so the retry phase's token is not needed here. The
        /// first attempt of a call does not come here when its endpoint is known at once: <see cref="CallPath.SendAsync"/>
        /// runs it in its own state machine (<see cref="StartAttempt"/>, the send, <see cref="EndAttempt"/>).
        /// </summary>
        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
        public async ValueTask<Outcome<HttpResponseMessage>> AttemptAsync(CancellationToken retryPhaseToken)
        {
            _ = retryPhaseToken;
            var sending = StartAttempt(out var ended, out var choosing);
            if (sending is null)
            {
                return ended ?? await AttemptAfterChoiceAsync(choosing).ConfigureAwait(false);
            }

            return await EndAttemptAsync(sending).ConfigureAwait(false);
        }

        /// <summary>
        /// The rest of an attempt whose endpoint choice waits for discovery (<see cref="StartAttempt"/> returned the pending
        /// choice): the one choice is awaited, never made again.
        /// </summary>
        public async ValueTask<Outcome<HttpResponseMessage>> AttemptAfterChoiceAsync(ValueTask<EndpointChoice> choosing)
        {
            Task<HttpResponseMessage>? sending;
            Outcome<HttpResponseMessage>? ended;
            try
            {
                sending = Send(await choosing.ConfigureAwait(false), out ended);
            }
            catch (Exception ex)
            {
                return Outcome.FromException<HttpResponseMessage>(ex);
            }

            return sending is null ? ended!.Value : await EndAttemptAsync(sending).ConfigureAwait(false);
        }

        /// <summary>Waits for the send under way and ends the attempt with its response or error (the retry phase's path).</summary>
        private async ValueTask<Outcome<HttpResponseMessage>> EndAttemptAsync(Task<HttpResponseMessage> sending)
        {
            try
            {
                return EndAttempt(await sending.ConfigureAwait(false), null);
            }
            catch (Exception ex)
            {
                return EndAttempt(null, ex);
            }
        }

        /// <summary>
        /// Starts an attempt: returns the send under way; or <see langword="null"/> with <paramref name="ended"/> set when the
        /// attempt ended before a send (no time left, no identity, no endpoint); or <see langword="null"/> with
        /// <paramref name="choosing"/> to await when the endpoint choice waits for discovery (then call <see cref="Send"/>).
        /// </summary>
        public Task<HttpResponseMessage>? StartAttempt(out Outcome<HttpResponseMessage>? ended, out ValueTask<EndpointChoice> choosing)
        {
            choosing = default;
            ended = null;
            var path = _path;
            if (Remaining() <= TimeSpan.Zero)
            {
                ended = Outcome.FromException<HttpResponseMessage>(TotalTimeout(null));
                return null;
            }

            try
            {
                _workload = path.GetIdentity();
                choosing = path._endpoints.ChooseAsync(Subset, Route!.SubsetKey, SubsetReason, Route.Name, _lastFailed, _cancellationToken);
            }
            catch (Exception ex)
            {
                ended = Outcome.FromException<HttpResponseMessage>(ex);
                return null;
            }

            if (!choosing.IsCompletedSuccessfully)
            {
                return null;
            }

            return Send(choosing.Result, out ended);
        }

        /// <summary>Sends the attempt to the chosen endpoint; the attempt's state is kept for <see cref="EndAttempt"/>.</summary>
        public Task<HttpResponseMessage>? Send(EndpointChoice choice, out Outcome<HttpResponseMessage>? ended)
        {
            ended = null;
            var path = _path;
            var request = _request;
            var time = path._time;
            var endpoint = choice.Endpoint;
            Endpoint = endpoint.Key;
            if (_tags is { } tags)
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
            request.Headers.TryAddWithoutValidation(MeshDeadline.HeaderName, MeshDeadline.Format(_deadline + (Body?.Timer.PausedTicks ?? 0), time));
            if (IsGrpc && _deadlinePropagated)
            {
                SendGrpcDeadline(request);
            }

            var token = ArmAttempt(path.Policy.AttemptTimeout);
            _choice = choice;
            _pool = path._pools.Get(path._destination, endpoint);
            _connections = _pool.Rent(_workload!);
            _state = path._endpoints.Begin(endpoint);
            _attemptStarted = time.GetTimestamp();
            try
            {
                return _connections.Invoker.SendAsync(request, token);
            }
            catch (Exception ex)
            {
                ended = EndAttempt(null, ex);
                return null;
            }
        }

        /// <summary>
        /// Ends the attempt under way with its response or error: what the error means (the caller gave up, the attempt or
        /// the call timed out, the transport failed), the connections given back, the outcome fed back to the balancer.
        /// </summary>
        public Outcome<HttpResponseMessage> EndAttempt(HttpResponseMessage? response, Exception? error)
        {
            var path = _path;
            var endpoint = _choice.Endpoint;
            var failed = true;
            var connectFailure = false;
            Outcome<HttpResponseMessage> outcome;
            GrpcStatusCode = GrpcStatus.None;
            if (response is not null)
            {
                // A gRPC call that failed before any message is HTTP 200 with grpc-status in the headers (Trailers-Only):
                // UNAVAILABLE counts against the endpoint like a 5xx; application statuses (NOT_FOUND...) are its successes.
                GrpcStatusCode = GrpcStatus.Read(response);
                failed = (int)response.StatusCode >= 500 || path.Policy.OutlierDetection.GrpcStatus.Contains(GrpcStatusCode);
                outcome = Outcome.FromResult(response);
            }
            else if (error is OperationCanceledException && _cancellationToken.IsCancellationRequested)
            {
                // The caller gave up: says nothing about the endpoint.
                failed = false;
                outcome = Outcome.FromException<HttpResponseMessage>(error);
            }
            else if (error is OperationCanceledException && _cancellation!.IsCancellationRequested)
            {
                if (!_attemptArmed)
                {
                    failed = false;
                    outcome = Outcome.FromException<HttpResponseMessage>(TotalTimeout(error));
                }
                else
                {
                    var host = path._destination.Host;
                    outcome = Outcome.FromException<HttpResponseMessage>(new AttemptTimeoutException(
                        $"The attempt to '{host}' at {endpoint.Key} took longer than its attempt timeout of {path.Policy.AttemptTimeout} (Mesh:Policy:Destinations:{host}:AttemptTimeout).",
                        error));
                }
            }
            else if (Body is { ContentFailed: true } || IsBodyNotResendable(error))
            {
                // The caller's own content failed while producing the body, or a body could not be sent again: not the
                // endpoint's doing.
                failed = false;
                outcome = Outcome.FromException<HttpResponseMessage>(error!);
            }
            else
            {
                // A transport failure (refused, reset by a crashed peer, a failed handshake): nothing complete answered.
                connectFailure = error is HttpRequestException and not MeshCallException;
                outcome = Outcome.FromException<HttpResponseMessage>(error!);
            }

            _pool!.Return(_connections);
            _grpcEnd?.Abandon();
            _grpcEnd = null;
            if (response is not null && IsGrpc && GrpcStatusCode == GrpcStatus.None && response.StatusCode == System.Net.HttpStatusCode.OK && GrpcStatus.IsGrpc(response.Content))
            {
                // The status comes in trailers, after the messages: the latency now, the endpoint's outcome with the status.
                path._endpoints.EndAtHeaders(_state!, _attemptStarted);
                _grpcEnd = new GrpcCallEnd(path._endpoints, _state!, _choice, path.Policy.OutlierDetection.GrpcStatus);
            }
            else
            {
                path._endpoints.End(_state!, _choice, _attemptStarted, failed, connectFailure, ejects: true);
                if (Route is { Canary: not null } canaryRoute && !(error is OperationCanceledException && _cancellationToken.IsCancellationRequested))
                {
                    // A route under an automated canary: every attempt counts, as the subset's endpoints saw it (a retry
                    // must not hide a failing canary); a gRPC status in trailers is counted when the call ends.
                    path._metrics.CanaryTraffic.Record(path._destination.Host, canaryRoute.Name, Subset, failed, path._time.GetElapsedTime(_attemptStarted).TotalSeconds);
                }
            }

            if (failed)
            {
                _lastFailed = endpoint.Key;
            }

            _pool = null;
            _connections = default;
            _state = null;
            _workload = null;
            _choice = default;
            Attempts++;
            return outcome;
        }

        public HttpResponseMessage Finish(Outcome<HttpResponseMessage> outcome)
        {
            if (outcome.Result is { } response)
            {
                return response;
            }

            var error = outcome.Exception!;
            if (error is OperationCanceledException && !_cancellationToken.IsCancellationRequested)
            {
                // Polly's back-off was cut by the call's deadline.
                error = TotalTimeout(error);
            }
            else if (error is AttemptTimeoutException timeout)
            {
                error = new MeshCallException(MeshCallReasons.Timeout, timeout.Message, timeout);
            }

            ExceptionDispatchInfo.Throw(error);
            return null!;
        }

        private TimeSpan Remaining() => _path._time.GetElapsedTime(_path._time.GetTimestamp(), _deadline + (Body?.Timer.PausedTicks ?? 0));

        private static bool IsBodyNotResendable(Exception? error)
        {
            for (var e = error; e is not null; e = e.InnerException)
            {
                if (e is RequestBodyNotResendableException)
                {
                    return true;
                }
            }

            return false;
        }

        /// <summary>
        /// Sends the propagated deadline on as <c>grpc-timeout</c>, or keeps the caller's own when that is sooner (Grpc.Net.Client
        /// sets it from the call's deadline).
        /// </summary>
        private void SendGrpcDeadline(HttpRequestMessage request)
        {
            var remaining = Remaining();
            if (request.Headers.NonValidated.TryGetValues(GrpcTimeout.HeaderName, out var values))
            {
                foreach (var value in values)
                {
                    if (GrpcTimeout.Parse(value) is { } own && own <= remaining)
                    {
                        return;
                    }
                }

                request.Headers.Remove(GrpcTimeout.HeaderName);
            }

            request.Headers.TryAddWithoutValidation(GrpcTimeout.HeaderName, GrpcTimeout.Format(remaining));
        }

        /// <summary>
        /// The call's one cancellation source, armed for this attempt with the smaller of the attempt timeout and the time
        /// left; a fresh one only when the previous attempt's timeout fired it (or the caller cancelled an earlier call).
        /// </summary>
        private CancellationToken ArmAttempt(TimeSpan attemptTimeout)
        {
            var remaining = Remaining();
            _attemptArmed = attemptTimeout < remaining;
            var delay = _attemptArmed ? attemptTimeout : remaining;
            // The pool is process-wide: a source made for another host's clock (a test's fake clock) is not reused.
            if (_cancellation is { } fired && (fired.IsCancellationRequested || !ReferenceEquals(_cancellationClock, _path._time)))
            {
                _callerRegistration.Dispose();
                _callerRegistration = default;
                fired.Dispose();
                _cancellation = null;
            }

            if (_cancellation is null)
            {
                // With the system clock a plain source (reusable across calls through TryReset); with another clock one bound to it.
                _cancellation = ReferenceEquals(_path._time, TimeProvider.System) ? new CancellationTokenSource() : new CancellationTokenSource(Timeout.InfiniteTimeSpan, _path._time);
                _cancellationClock = _path._time;
            }

            if (Body?.Timer is { } timer)
            {
                timer.Arm(_cancellation, delay);
            }
            else
            {
                _cancellation.CancelAfter(delay);
            }

            if (_callerRegistration == default)
            {
                _callerRegistration = _cancellationToken.UnsafeRegister(static state => ((CancellationTokenSource)state!).Cancel(), _cancellation);
            }

            return _cancellation.Token;
        }

        private MeshCallException TotalTimeout(Exception? inner)
        {
            var host = _path._destination.Host;
            return new MeshCallException(
                MeshCallReasons.Timeout,
                $"The call to '{host}' took longer than its total timeout of {_path.Policy.Timeout} (Mesh:Policy:Destinations:{host}:Timeout, or the caller's deadline), after {Attempts} attempt(s).",
                inner);
        }
    }
}

/// <summary>Per-client settings of mesh calls, resolved once.</summary>
internal sealed class MeshClientSettings(Version httpVersion, string sourceService, int requestBufferLimit = MeshClientOptions.DefaultRequestBufferLimit)
{
    public Version HttpVersion { get; } = httpVersion;

    /// <summary>Gets the most bytes of a request body kept for a retry or a mirror copy (<c>Mesh:Client:RequestBufferLimit</c>).</summary>
    public int RequestBufferLimit { get; } = requestBufferLimit;

    public string SourceService { get; } = sourceService;
}
