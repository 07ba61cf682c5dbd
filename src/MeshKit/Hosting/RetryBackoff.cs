namespace MeshKit.Hosting;

/// <summary>
/// The back-off of MeshKit's background loops (certificate renewal, the control-channel watch): exponential from a base
/// delay, capped, with jitter in the upper half so that the replicas of a service do not retry in step.
/// MeshKit.Consul has its own (<c>ConsulBlockingQuery.Backoff</c>) because that package does not depend on MeshKit.
/// </summary>
internal static class RetryBackoff
{
    /// <summary>Between half and all of <c>min(maxDelay, baseDelay × 2^attempt)</c>.</summary>
    /// <param name="attempt">How many retries came before this one (0 for the first).</param>
    /// <param name="baseDelay">The delay of the first retry, before jitter.</param>
    /// <param name="maxDelay">The cap, before jitter.</param>
    /// <returns>The delay.</returns>
    public static TimeSpan Next(int attempt, TimeSpan baseDelay, TimeSpan maxDelay)
    {
        var exponential = baseDelay.TotalMilliseconds * Math.Pow(2, Math.Clamp(attempt, 0, 16));
        var capped = Math.Min(exponential, maxDelay.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(capped * (0.5 + (Random.Shared.NextDouble() * 0.5)));
    }
}
