using MeshKit.Hosting;

namespace MeshKit.Tests.Identity;

/// <summary>The back-off of renewal and of the control-channel watch: doubling, capped, jittered in the upper half.</summary>
[Trait("Area", "Identity")]
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
}
