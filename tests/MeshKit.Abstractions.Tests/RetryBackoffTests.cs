namespace MeshKit.Abstractions.Tests;

/// <summary>
/// The one back-off of renewal, the control-channel watch and Consul's blocking queries: doubling, capped, jittered in
/// the upper half.
/// </summary>
[Trait("Area", "Resilience")]
public sealed class RetryBackoffTests
{
    [Theory]
    [InlineData(0, 100)]
    [InlineData(1, 200)]
    [InlineData(3, 800)]
    [InlineData(10, 5_000)]
    [InlineData(1_000, 5_000)]
    public void Each_delay_lies_between_half_and_all_of_the_capped_exponential(int attempt, int ceilingMs)
    {
        for (var i = 0; i < 200; i++)
        {
            var delay = RetryBackoff.Next(attempt, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(5)).TotalMilliseconds;
            Assert.InRange(delay, ceilingMs / 2.0, ceilingMs);
        }
    }

    [Fact]
    public void Every_attempt_count_doubles_from_the_base_and_stays_under_the_cap_without_overflowing()
    {
        var baseDelay = TimeSpan.FromMilliseconds(100);
        var max = TimeSpan.FromSeconds(1);
        for (var attempt = -1; attempt <= 100; attempt++)
        {
            var ceiling = TimeSpan.FromTicks(Math.Min(max.Ticks, baseDelay.Ticks * (1L << Math.Clamp(attempt, 0, 30))));
            for (var sample = 0; sample < 50; sample++)
            {
                Assert.InRange(RetryBackoff.Next(attempt, baseDelay, max), ceiling / 2, ceiling);
            }
        }
    }

    [Fact]
    public void A_long_base_delay_is_capped_at_every_attempt()
    {
        for (var attempt = 0; attempt <= 64; attempt++)
        {
            Assert.InRange(RetryBackoff.Next(attempt, TimeSpan.FromDays(1), TimeSpan.FromHours(1)), TimeSpan.FromMinutes(30), TimeSpan.FromHours(1));
        }
    }

    [Fact]
    public void A_negative_delay_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => RetryBackoff.Next(0, TimeSpan.FromSeconds(-1), TimeSpan.FromSeconds(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => RetryBackoff.Next(0, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(-1)));
    }
}
