namespace MeshKit;

/// <summary>
/// The one back-off of MeshKit's background loops (certificate renewal, the control-channel watch, Consul's blocking
/// queries): exponential from a base delay, capped, with "equal jitter" (a random delay in the upper half) so that the
/// replicas of a service do not retry in step.
/// </summary>
public static class RetryBackoff
{
    /// <summary>
    /// Gets the delay before a retry: between half and all of <c>min(maxDelay, baseDelay × 2^attempt)</c>.
    /// </summary>
    /// <param name="attempt">How many retries came before this one (0 for the first); a negative value counts as 0.</param>
    /// <param name="baseDelay">The delay of the first retry, before jitter.</param>
    /// <param name="maxDelay">The cap, before jitter; when it is below <paramref name="baseDelay"/> it wins.</param>
    /// <returns>The delay.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="baseDelay"/> or <paramref name="maxDelay"/> is negative.</exception>
    public static TimeSpan Next(int attempt, TimeSpan baseDelay, TimeSpan maxDelay)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(baseDelay, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxDelay, TimeSpan.Zero);

        // In ticks, and compared before shifting, so that no attempt count can overflow past the cap.
        var exponent = Math.Clamp(attempt, 0, 62);
        var ceiling = baseDelay.Ticks > (maxDelay.Ticks >> exponent) ? maxDelay.Ticks : baseDelay.Ticks << exponent;
        var half = ceiling / 2;
        return TimeSpan.FromTicks(half + Random.Shared.NextInt64(ceiling - half + 1));
    }
}
