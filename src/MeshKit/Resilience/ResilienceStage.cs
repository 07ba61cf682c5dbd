using System.Collections.Concurrent;
using System.Net;
using System.Threading.RateLimiting;
using MeshKit.Deadlines;
using MeshKit.Policy;
using MeshKit.Telemetry;
using MeshKit.Transport;
using Microsoft.Extensions.Http.Resilience;
using Polly;
using Polly.Retry;

namespace MeshKit.Resilience;

/// <summary>What the retry phase asks of the call it retries.</summary>
internal interface IRetriedCall
{
    /// <summary>Gets the request method (only idempotent ones are retried, unless the policy says otherwise).</summary>
    HttpMethod Method { get; }

    /// <summary>Gets whether the call is a gRPC call (retried by status, whatever its method).</summary>
    bool IsGrpc { get; }

    /// <summary>Gets whether the request can be sent again: no body, or a body not started or kept whole.</summary>
    bool CanResend { get; }

    /// <summary>Gets whether an attempt began to send the request body.</summary>
    bool BodyStarted { get; }

    /// <summary>Gets the gRPC status of the last attempt's Trailers-Only answer (read once, as the attempt ended), or <see cref="GrpcStatus.None"/>.</summary>
    int GrpcStatusCode { get; }

    /// <summary>Gets the first attempt's outcome once, so the retry strategy decides on it before any new attempt.</summary>
    Outcome<HttpResponseMessage>? TakeFirstOutcome();

    /// <summary>Makes one more attempt.</summary>
    ValueTask<Outcome<HttpResponseMessage>> AttemptAsync(CancellationToken cancellationToken);

    /// <summary>Notes that the next attempt is a retry, and why.</summary>
    void OnRetry(string reason);
}

/// <summary>
/// The resilience stage of one destination (kept across policy reloads that leave its settings alone, so its budget and
/// limits carry on): the concurrency limit (System.Threading.RateLimiting's <see cref="ConcurrencyLimiter"/>, Envoy's
/// "circuit breaker"), the call's timeout (the smaller of the total timeout and the deadline the caller propagated), the
/// retry budget, and the retries themselves.
/// </summary>
/// <remarks>
/// Costs nothing until it acts: a call's first attempt enters no Polly strategy. Only when that attempt failed in a way
/// the policy retries does the call enter Polly's retry strategy (Microsoft.Extensions.Http.Resilience's
/// <see cref="HttpRetryStrategyOptions"/>: exponential back-off with jitter), which decides on the first outcome and makes
/// the further attempts. The budget is <see cref="RetryBudget"/>, because the library's counts only the requests that
/// enter its strategy.
/// </remarks>
internal sealed class ResilienceStage
{
    private static readonly ResiliencePropertyKey<IRetriedCall> CallKey = new("MeshKit.RetriedCall");
    private static readonly TimeSpan MinimumTimeout = TimeSpan.FromMilliseconds(1);
    private readonly ConcurrencyLimiter _limiter;
    private int _inFlight;
    private readonly RetryBudget _budget;
    private readonly ResiliencePipeline<HttpResponseMessage>? _retries;
    private readonly MeshMetrics _metrics;
    private readonly TimeProvider _time;

    public ResilienceStage(string destination, ResilienceSettings settings, MeshMetrics metrics, TimeProvider time)
    {
        Destination = destination;
        Settings = settings;
        _metrics = metrics;
        _time = time;
        _limiter = new ConcurrencyLimiter(new ConcurrencyLimiterOptions
        {
            PermitLimit = settings.Concurrency.MaxRequests,
            QueueLimit = settings.Concurrency.MaxQueue,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        });
        var retry = settings.Retry;
        _budget = new RetryBudget(retry.BudgetRatio, retry.BudgetMinimumThroughput, retry.BudgetWindow, time);
        if (retry.MaxRetries > 0)
        {
            _retries = new ResiliencePipelineBuilder<HttpResponseMessage> { Name = $"mesh:{destination}", TimeProvider = time }
                .AddRetry(new HttpRetryStrategyOptions
                {
                    Name = "retry",
                    MaxRetryAttempts = retry.MaxRetries,
                    BackoffType = DelayBackoffType.Exponential,
                    UseJitter = true,
                    Delay = retry.BaseDelay,
                    MaxDelay = retry.MaxDelay,
                    ShouldRetryAfterHeader = false,
                    ShouldHandle = args => ValueTask.FromResult(
                        args.Context.Properties.TryGetValue(CallKey, out var call) && ShouldRetry(args.Outcome, call) && Withdraw()),
                    OnRetry = args =>
                    {
                        if (args.Context.Properties.TryGetValue(CallKey, out var call))
                        {
                            var reason = Reason(args.Outcome, call.GrpcStatusCode);
                            call.OnRetry(reason);
                            _metrics.RecordRetry(Destination, reason);
                        }

                        return default;
                    },
                })
                .Build();
        }
    }

    /// <summary>Gets the destination.</summary>
    public string Destination { get; }

    /// <summary>Gets the settings this stage was built from.</summary>
    public ResilienceSettings Settings { get; }

    /// <summary>Gets whether a failed first attempt can be retried at all.</summary>
    public bool Retries => _retries is not null;

    /// <summary>
    /// Takes a permit of the concurrency limit. Without a queue (the default) a permit is one interlocked increment, and a
    /// call over the limit is refused at once with an error naming the setting; with a queue the call waits its turn in
    /// System.Threading.RateLimiting's <see cref="ConcurrencyLimiter"/>.
    /// </summary>
    /// <param name="maxWait">How long a queued call may wait for a slot: what is left of its total timeout.</param>
    /// <param name="cancellationToken">The caller's token.</param>
    public ValueTask<ConcurrencyPermit> EnterAsync(TimeSpan maxWait, CancellationToken cancellationToken)
    {
        if (Settings.Concurrency.MaxQueue == 0)
        {
            if (Interlocked.Increment(ref _inFlight) <= Settings.Concurrency.MaxRequests)
            {
                return ValueTask.FromResult(new ConcurrencyPermit(this, null));
            }

            Interlocked.Decrement(ref _inFlight);
            return ValueTask.FromException<ConcurrencyPermit>(Refused());
        }

        var lease = _limiter.AttemptAcquire();
        if (lease.IsAcquired)
        {
            return ValueTask.FromResult(new ConcurrencyPermit(this, lease));
        }

        lease.Dispose();
        return QueueAsync(maxWait, cancellationToken);
    }

    /// <summary>Gives back a permit taken without a queue.</summary>
    internal void Exit() => Interlocked.Decrement(ref _inFlight);

    /// <summary>Gets the call's timeout: the total timeout, or the caller's propagated deadline when it is sooner.</summary>
    /// <param name="propagated">Whether the timeout is the propagated deadline.</param>
    public TimeSpan CallTimeout(out bool propagated)
    {
        var timeout = Settings.Timeout;
        propagated = false;
        if (MeshDeadline.Remaining is { } remaining && remaining < timeout)
        {
            timeout = remaining > MinimumTimeout ? remaining : MinimumTimeout;
            propagated = true;
        }

        return timeout;
    }

    /// <summary>Counts a call in the retry budget.</summary>
    public void RecordRequest() => _budget.RecordRequest();

    /// <summary>Whether the policy retries this outcome of the call (the budget aside).</summary>
    public bool ShouldRetry(Outcome<HttpResponseMessage> outcome, IRetriedCall call)
    {
        // A body that was sent and not kept (larger than the buffer limit, or failed part-way) cannot be sent again.
        if (!call.CanResend)
        {
            return false;
        }

        // The server said the connection's certificate expired and it did not process the request: always safe to retry.
        if (outcome.Result?.StatusCode == HttpStatusCode.MisdirectedRequest)
        {
            return true;
        }

        var retry = Settings.Retry;
        if (call.IsGrpc)
        {
            // A gRPC call (a POST) is retried when it ended before any response message with a status the policy names
            // (Trailers-Only: the server did not do the work), or when its connection failed before its body started.
            if (outcome.Result is not null && retry.GrpcStatus.Contains(call.GrpcStatusCode))
            {
                return true;
            }

            if (outcome.Exception is HttpRequestException and not MeshCallException && !call.BodyStarted && retry.OnConnectFailure)
            {
                return true;
            }
        }

        if (!retry.RetryAllMethods && !IsIdempotent(call.Method))
        {
            return false;
        }

        return outcome switch
        {
            { Exception: MeshCallException } => false,
            { Exception: AttemptTimeoutException } => retry.OnTimeout,
            { Exception: HttpRequestException } => retry.OnConnectFailure,
            { Result: { } response } => retry.OnServerError && (int)response.StatusCode >= 500,
            _ => false,
        };
    }

    /// <summary>
    /// The retry phase: the call enters Polly's retry strategy with its first outcome, which the strategy judges first
    /// (budget included) before it waits and makes further attempts. Only calls whose first attempt failed get here.
    /// </summary>
    public async ValueTask<Outcome<HttpResponseMessage>> RetryAsync(IRetriedCall call, CancellationToken cancellationToken)
    {
        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        context.Properties.Set(CallKey, call);
        try
        {
            return await _retries!.ExecuteOutcomeAsync(
                static async (ctx, call) =>
                {
                    if (call.TakeFirstOutcome() is { } first)
                    {
                        return first;
                    }

                    return await call.AttemptAsync(ctx.CancellationToken).ConfigureAwait(false);
                },
                context,
                call).ConfigureAwait(false);
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    /// <summary>Why an attempt is retried, for spans and metrics: <c>timeout</c>, <c>connect_failure</c>, <c>5xx</c>, ....</summary>
    internal static string Reason(Outcome<HttpResponseMessage> outcome, int grpcStatus = GrpcStatus.None) => outcome switch
    {
        { Exception: AttemptTimeoutException } => "timeout",
        { Exception: HttpRequestException } => "connect_failure",
        { Result.StatusCode: HttpStatusCode.MisdirectedRequest } => MeshCallReasons.ConnectionCertificateExpired,
        { Result: not null } when grpcStatus >= 0 => GrpcStatus.RetryReason(grpcStatus),
        { Result: { } r } => $"{(int)r.StatusCode / 100}xx",
        _ => "other",
    };

    private bool Withdraw()
    {
        if (_budget.TryWithdraw())
        {
            return true;
        }

        _metrics.RecordRetryBudgetExhausted(Destination);
        return false;
    }

    private async ValueTask<ConcurrencyPermit> QueueAsync(TimeSpan maxWait, CancellationToken cancellationToken)
    {
        // The wait counts in the call's total timeout (the rare path: two sources are made only for a queued call).
        using var timeout = new CancellationTokenSource(maxWait, _time);
        using var waiting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        RateLimitLease lease;
        try
        {
            lease = await _limiter.AcquireAsync(1, waiting.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException ex) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new MeshCallException(
                MeshCallReasons.Timeout,
                $"The call to '{Destination}' waited {maxWait} for a slot of its concurrency limit (Mesh:Policy:Destinations:{Destination}:Concurrency) and its total timeout ran out (Mesh:Policy:Destinations:{Destination}:Timeout, or the caller's deadline).",
                ex);
        }

        if (lease.IsAcquired)
        {
            return new ConcurrencyPermit(this, lease);
        }

        lease.Dispose();
        throw Refused();
    }

    private MeshCallException Refused()
    {
        _metrics.RecordConcurrencyRejection(Destination);
        var concurrency = Settings.Concurrency;
        return new MeshCallException(
            MeshCallReasons.ConcurrencyLimit,
            $"The call to '{Destination}' was refused at once: {concurrency.MaxRequests} requests are under way and the queue of {concurrency.MaxQueue} is full (Mesh:Policy:Destinations:{Destination}:Concurrency).");
    }

    private static bool IsIdempotent(HttpMethod method) =>
        method == HttpMethod.Get || method == HttpMethod.Head || method == HttpMethod.Options || method == HttpMethod.Trace
        || method == HttpMethod.Put || method == HttpMethod.Delete;
}

/// <summary>A permit of a destination's concurrency limit, held for a call's life.</summary>
internal readonly struct ConcurrencyPermit(ResilienceStage stage, RateLimitLease? lease) : IDisposable
{
    public void Dispose()
    {
        if (lease is null)
        {
            stage.Exit();
        }
        else
        {
            lease.Dispose();
        }
    }
}

/// <summary>
/// Every destination's <see cref="ResilienceStage"/>, keyed by the settings that shape it: a policy reload that leaves a
/// destination's timeout, retry and concurrency settings alone keeps its stage (and its budget and limiter).
/// </summary>
internal sealed class ResilienceStages
{
    private readonly ConcurrentDictionary<(string Destination, ResilienceSettings Settings), ResilienceStage> _stages = new();
    private readonly MeshMetrics _metrics;
    private readonly TimeProvider _time;

    public ResilienceStages(MeshMetrics metrics, TimeProvider time, PolicyWatcher policies)
    {
        _metrics = metrics;
        _time = time;
        policies.Changed += Prune;
    }

    public ResilienceStage Get(string destination, DestinationPolicy policy)
    {
        var key = (destination, ResilienceSettings.Of(policy));
        return _stages.TryGetValue(key, out var stage) ? stage : _stages.GetOrAdd(key, k => new ResilienceStage(k.Destination, k.Settings, _metrics, _time));
    }

    private void Prune(PolicySnapshot snapshot)
    {
        foreach (var (destination, settings) in _stages.Keys)
        {
            // Not disposed: a call under way, or a call path built before the reload, may still use it (a concurrency
            // limiter without a queue holds no timer, so dropping it is enough).
            if (ResilienceSettings.Of(snapshot.For(destination)) != settings)
            {
                _stages.TryRemove((destination, settings), out _);
            }
        }
    }
}
