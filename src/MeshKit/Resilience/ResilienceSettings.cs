using MeshKit.Policy;

namespace MeshKit.Resilience;

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
        [nameof(DestinationPolicy.AttemptTimeout)] = "the attempt, per attempt",
        [nameof(DestinationPolicy.IdleTimeout)] = "the response body, per call",
        [nameof(DestinationPolicy.OutlierDetection)] = "the outlier detector, per outcome",
        [nameof(DestinationPolicy.LoadBalancer)] = "endpoint choice, per attempt",
        [nameof(DestinationPolicy.FailurePenalty)] = "the attempt's feedback, per failed attempt",
        [nameof(DestinationPolicy.SubsetKey)] = "route matching, per call",
        [nameof(DestinationPolicy.Routes)] = "route matching, per call",
    };

    public static ResilienceSettings Of(DestinationPolicy policy) => new(policy.Timeout, policy.Retry, policy.Concurrency);
}
