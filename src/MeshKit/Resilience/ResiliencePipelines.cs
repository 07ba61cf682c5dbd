using MeshKit.Deadlines;
using System.Collections.Concurrent;
using System.Net;
using MeshKit.Policy;
using MeshKit.Telemetry;
using MeshKit.Transport;
using Microsoft.Extensions.Http.Resilience;
using Polly;
using Polly.RateLimiting;
using Polly.Retry;
using Polly.Telemetry;
using Polly.Timeout;

namespace MeshKit.Resilience;

/// <summary>
/// One resilience pipeline per destination (Polly 8, Microsoft.Extensions.Http.Resilience 11): the total timeout (capped
/// by an incoming deadline), the concurrency limit, and the budgeted retry. The retry budget belongs to the pipeline, so its
/// scope is one destination of one workload. A destination keeps its pipeline (and budget) across policy reloads that
/// do not change its resilience settings.
/// </summary>
internal sealed class ResiliencePipelines
{
    /// <summary>The context property that carries the call through the pipeline.</summary>
    internal static readonly ResiliencePropertyKey<MeshCall> CallKey = new("MeshKit.Call");

    private readonly ConcurrentDictionary<(string Destination, ResilienceSettings Key), ResiliencePipeline<HttpResponseMessage>> _pipelines = new();
    private readonly MeshMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly MeshResilienceTelemetry _telemetry;

    public ResiliencePipelines(MeshMetrics metrics, TimeProvider time, PolicyWatcher policies)
    {
        _metrics = metrics;
        _time = time;
        _telemetry = new MeshResilienceTelemetry(metrics);
        policies.Changed += Prune;
    }

    public ResiliencePipeline<HttpResponseMessage> Get(DestinationPolicy policy, string destination)
    {
        var key = (destination, ResilienceSettings.Of(policy));
        return _pipelines.TryGetValue(key, out var pipeline) ? pipeline : _pipelines.GetOrAdd(key, k => Build(k.Key, k.Destination));
    }

    private void Prune(PolicySnapshot snapshot)
    {
        foreach (var (destination, key) in _pipelines.Keys)
        {
            if (ResilienceSettings.Of(snapshot.For(destination)) != key)
            {
                _pipelines.TryRemove((destination, key), out _);
            }
        }
    }

    // Built from the pipeline's key alone, so a setting the pipeline uses is always part of the key that decides when it is rebuilt.
    private ResiliencePipeline<HttpResponseMessage> Build(ResilienceSettings settings, string destination)
    {
        var builder = new ResiliencePipelineBuilder<HttpResponseMessage> { Name = $"mesh:{destination}", TimeProvider = _time };
        builder.ConfigureTelemetry(new TelemetryOptions { TelemetryListeners = { _telemetry } });

        // 1. Total timeout, shortened by the deadline the caller of this workload propagated.
        builder.AddTimeout(new TimeoutStrategyOptions
        {
            Name = "total",
            TimeoutGenerator = args =>
            {
                var timeout = settings.Timeout;
                if (MeshDeadline.Remaining is { } remaining && remaining < timeout)
                {
                    timeout = remaining > TimeSpan.FromMilliseconds(1) ? remaining : TimeSpan.FromMilliseconds(1);
                }

                if (args.Context.Properties.TryGetValue(CallKey, out var call))
                {
                    // On the mesh's clock: the attempt stage reads it back on the same one to send the time left on.
                    call.DeadlineTimestamp = _time.GetTimestamp() + (long)(timeout.TotalSeconds * _time.TimestampFrequency);
                }

                return ValueTask.FromResult(timeout);
            },
        });

        // 2. Envoy-style circuit breaking: a bounded number of requests under way, a bounded queue, fail fast beyond.
        builder.AddConcurrencyLimiter(settings.Concurrency.MaxRequests, settings.Concurrency.MaxQueue);

        // 3. Retries, limited by a budget. UseBudgetedRetries' API is [Experimental("EXTEXP0001")] in 11.0.
        var retry = settings.Retry;
        if (retry.MaxRetries > 0)
        {
#pragma warning disable EXTEXP0001 // Retry budgets are experimental in Microsoft.Extensions.Http.Resilience 11.0; see docs/traffic-policy.md.
            var options = new HttpRetryStrategyOptions
            {
                Name = "retry",
                MaxRetryAttempts = retry.MaxRetries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = retry.BaseDelay,
                MaxDelay = retry.MaxDelay,
                ShouldRetryAfterHeader = false,
                ShouldHandle = args => ValueTask.FromResult(ShouldRetry(args.Outcome, args.Context, retry)),
                OnRetry = args =>
                {
                    if (args.Context.Properties.TryGetValue(CallKey, out var call))
                    {
                        call.RetryReason = Reason(args.Outcome);
                        _metrics.RecordRetry(destination, call.RetryReason);
                    }

                    return default;
                },
            };
            options.UseBudgetedRetries();
            options.RetryBudget!.RetryRatio = retry.BudgetRatio;
            options.RetryBudget.MinimumThroughput = retry.BudgetMinimumThroughput;
            options.RetryBudget.SamplingDuration = retry.BudgetWindow;
            builder.AddRetryWithBudget(options);
#pragma warning restore EXTEXP0001
        }

        return builder.Build();
    }

    private static bool ShouldRetry(Outcome<HttpResponseMessage> outcome, ResilienceContext context, RetryPolicy retry)
    {
        if (!context.Properties.TryGetValue(CallKey, out var call))
        {
            return false;
        }

        // The server said the connection's certificate expired and it did not process the request: always safe to retry.
        if (outcome.Result?.StatusCode == HttpStatusCode.MisdirectedRequest)
        {
            return true;
        }

        if (!retry.RetryAllMethods && !IsIdempotent(call.Method))
        {
            return false;
        }

        return outcome switch
        {
            { Exception: MeshCallException } => false,
            { Exception: TimeoutRejectedException } => retry.OnTimeout,
            { Exception: HttpRequestException } => retry.OnConnectFailure,
            { Result: { } response } => retry.OnServerError && (int)response.StatusCode >= 500 && !IsInjectedFault(response),
            _ => false,
        };
    }

    private static bool IsInjectedFault(HttpResponseMessage response) => response.Headers.Contains("x-mesh-fault");

    internal static string Reason(Outcome<HttpResponseMessage> outcome) => outcome switch
    {
        { Exception: TimeoutRejectedException } => "timeout",
        { Exception: HttpRequestException } => "connect_failure",
        { Result.StatusCode: HttpStatusCode.MisdirectedRequest } => "connection_certificate_expired",
        { Result: { } r } => $"{(int)r.StatusCode / 100}xx",
        _ => "other",
    };

    private static bool IsIdempotent(HttpMethod method) =>
        method == HttpMethod.Get || method == HttpMethod.Head || method == HttpMethod.Options || method == HttpMethod.Trace
        || method == HttpMethod.Put || method == HttpMethod.Delete;

    /// <summary>Counts what the pipelines do that has no callback of its own: retry budget exhaustion, limiter rejections.</summary>
    private sealed class MeshResilienceTelemetry(MeshMetrics metrics) : TelemetryListener
    {
        public override void Write<TResult, TArgs>(in TelemetryEventArguments<TResult, TArgs> args)
        {
            // Called for every execution and attempt too (PipelineExecuting, ExecutionAttempt, ...): name the destination
            // only for the two events counted here.
            var name = args.Event.EventName;
            if (name.Contains("Budget", StringComparison.OrdinalIgnoreCase))
            {
                metrics.RecordRetryBudgetExhausted(Destination(args.Source.PipelineName));
            }
            else if (name == "OnRateLimiterRejected")
            {
                metrics.RecordConcurrencyRejection(Destination(args.Source.PipelineName));
            }
        }

        private static string Destination(string? pipelineName) =>
            pipelineName is { } pipeline && pipeline.StartsWith("mesh:", StringComparison.Ordinal) ? pipeline[5..] : "unknown";
    }
}

/// <summary>
/// The part of a <see cref="DestinationPolicy"/> its resilience pipeline is built from, compared by value: equal settings
/// share a pipeline, so unchanged destinations keep theirs across reloads. The pipeline is built from this key alone, so a
/// setting cannot shape the pipeline without being part of the key; <see cref="ReadPerCall"/> names the destination
/// settings that do not shape it (a test holds <see cref="DestinationPolicy"/> to the two lists). Read on every call: a
/// struct of the records themselves, never a formatted string.
/// </summary>
internal readonly record struct ResilienceSettings(TimeSpan Timeout, RetryPolicy Retry, ConcurrencyPolicy Concurrency)
{
    /// <summary>The <see cref="DestinationPolicy"/> properties the pipeline does not use, and what reads them on each call instead.</summary>
    internal static readonly IReadOnlyDictionary<string, string> ReadPerCall = new Dictionary<string, string>
    {
        [nameof(DestinationPolicy.Destination)] = "the pipeline's name and the key's destination",
        [nameof(DestinationPolicy.AttemptTimeout)] = "MeshAttemptHandler, per attempt",
        [nameof(DestinationPolicy.OutlierDetection)] = "the outlier detector, per outcome",
        [nameof(DestinationPolicy.LoadBalancer)] = "endpoint choice, per attempt",
        [nameof(DestinationPolicy.FailurePenalty)] = "MeshAttemptHandler, per failed attempt",
        [nameof(DestinationPolicy.SubsetKey)] = "route matching, per call",
        [nameof(DestinationPolicy.Routes)] = "route matching, per call",
    };

    public static ResilienceSettings Of(DestinationPolicy policy) => new(policy.Timeout, policy.Retry, policy.Concurrency);
}
