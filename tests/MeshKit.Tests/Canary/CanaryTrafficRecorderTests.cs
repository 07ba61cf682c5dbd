using MeshKit.Routing;
using MeshKit.Telemetry;

namespace MeshKit.Tests.Canary;

/// <summary>The workload's counts of attempts on canary routes: what a report carries, and that nothing is lost or unbounded.</summary>
[Trait("Area", "Canary")]
public sealed class CanaryTrafficRecorderTests
{
    [Fact]
    public void A_take_reports_each_subsets_attempts_failures_and_latencies_once()
    {
        var recorder = new CanaryTrafficRecorder();
        recorder.Record("orders", "canary", "v1", failed: false, seconds: 0.004);
        recorder.Record("orders", "canary", "v1", failed: false, seconds: 0.030);
        recorder.Record("orders", "canary", "v2", failed: true, seconds: 2.5);
        recorder.Record("orders", "canary", null, failed: true, seconds: 1); // no subset: not a canary's attempt

        var report = recorder.Take()!;

        var v1 = Assert.Single(report.Routes, r => r.Subset == "v1");
        var v2 = Assert.Single(report.Routes, r => r.Subset == "v2");
        Assert.Equal((2L, 0L), (v1.Requests, v1.Failures));
        Assert.Equal((1L, 1L), (v2.Requests, v2.Failures));
        Assert.Equal(1, v1.Latency[LatencyHistogram.BucketOf(4)]);
        Assert.Equal(1, v1.Latency[LatencyHistogram.BucketOf(30)]);
        Assert.Equal(1, v2.Latency[LatencyHistogram.BucketOf(2_500)]);
        Assert.Null(recorder.Take());
    }

    [Fact]
    public void Counts_that_could_not_be_sent_go_with_the_next_report()
    {
        var recorder = new CanaryTrafficRecorder();
        recorder.Record("orders", "canary", "v2", failed: true, seconds: 0.01);
        var unsent = recorder.Take()!;
        recorder.Record("orders", "canary", "v2", failed: false, seconds: 0.01);

        recorder.Return(unsent);
        var next = Assert.Single(recorder.Take()!.Routes);

        Assert.Equal((2L, 1L, 2L), (next.Requests, next.Failures, next.Latency[LatencyHistogram.BucketOf(10)]));
    }

    [Fact]
    public void At_most_the_reports_limit_of_series_is_kept()
    {
        var recorder = new CanaryTrafficRecorder();
        for (var i = 0; i < CanaryTrafficReport.MaxRoutes + 10; i++)
        {
            recorder.Record($"service-{i}", "canary", "v2", failed: false, seconds: 0.01);
        }

        Assert.Equal(CanaryTrafficReport.MaxRoutes, recorder.Take()!.Routes.Count);
    }

    [Theory]
    [InlineData(new long[] { 100 }, 0.99, 0.99)]
    [InlineData(new long[] { 0, 0, 0, 0, 0, 0, 50, 50 }, 0.5, 100)]
    [InlineData(new long[] { 0, 0, 0, 0, 0, 0, 50, 50 }, 0.99, 149)]
    public void A_percentile_is_read_from_the_buckets(long[] counts, double quantile, double expected)
    {
        var buckets = new long[LatencyHistogram.BucketCount];
        counts.CopyTo(buckets, 0);

        Assert.Equal(expected, LatencyHistogram.Percentile(buckets, quantile)!.Value, precision: 6);
    }
}
