using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using MeshKit.ControlPlane.Canary;
using MeshKit.ControlPlane.Policy;
using MeshKit.ControlPlane.Workloads;
using MeshKit.Routing;
using MeshKit.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace MeshKit.ControlPlane.Tests.Canary;

/// <summary>
/// The canary analysis on a fake clock, in a real control service's services (not started: the tests drive each round):
/// promotion step by step, rollback on failed checks, waiting without traffic, reports or endpoints, a restart that never
/// promotes on partial figures, and an operator's actions winning over the analysis. The weights are read back from the
/// central policy the controller writes.
/// </summary>
[Trait("Area", "Canary")]
public sealed class CanaryControllerTests : IAsyncDisposable
{
    private const string Key = "frontend/orders/canary";
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);
    private readonly TempDirectory _data = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 7, 6, 0, 0, TimeSpan.Zero));
    private readonly List<WebApplication> _apps = [];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_healthy_canary_moves_up_step_by_step_and_is_promoted()
    {
        var services = Start();
        var canary = services.GetRequiredService<CanaryController>();
        WorkloadsOf(services, "v1", "v2");

        await canary.RunOnceAsync(Ct);
        Assert.Equal((CanaryPhase.Progressing, 20), Phase(canary));
        Assert.Equal(20, CanaryWeight(services));

        await IntervalAsync(services, canary, stable: (200, 0, 20), canaryFigures: (50, 0, 30));
        Assert.Equal((CanaryPhase.Progressing, 50), Phase(canary));
        Assert.Equal(50, CanaryWeight(services));

        await IntervalAsync(services, canary, stable: (100, 0, 20), canaryFigures: (100, 0, 30));
        Assert.Equal((CanaryPhase.Promoted, 100), Phase(canary));
        Assert.Equal(100, CanaryWeight(services));
        Assert.Equal(["start", "advance", "promote"], State(canary).Decisions.Select(d => d.Action));
        Assert.Contains("p99", State(canary).Decisions[1].Reason, StringComparison.Ordinal);
        Assert.Equal(50, State(canary).Decisions[1].Canary!.Requests);
    }

    [Fact]
    public async Task A_failing_canary_holds_then_rolls_back_in_one_write_within_two_intervals()
    {
        var services = Start();
        var canary = services.GetRequiredService<CanaryController>();
        WorkloadsOf(services, "v1", "v2");
        await canary.RunOnceAsync(Ct);
        var central = services.GetRequiredService<CentralPolicy>();

        // 20 % of the canary's calls fail: below the 99 % success rate.
        await IntervalAsync(services, canary, stable: (200, 0, 20), canaryFigures: (50, 10, 30));
        Assert.Equal((CanaryPhase.Progressing, 20), Phase(canary));
        Assert.Equal(1, State(canary).FailedChecks);
        Assert.Contains("success rate 80 % < 99 %", State(canary).Reason, StringComparison.Ordinal);
        var beforeRollback = central.Get("frontend")!.Revision;

        await IntervalAsync(services, canary, stable: (200, 0, 20), canaryFigures: (50, 10, 30));
        Assert.Equal((CanaryPhase.RolledBack, 0), Phase(canary));
        Assert.Equal(0, CanaryWeight(services));
        Assert.True(central.Get("frontend")!.Revision > beforeRollback);
        Assert.Equal(["start", "hold", "rollback"], State(canary).Decisions.Select(d => d.Action));

        // Rolled back stays rolled back, however healthy the figures become.
        await IntervalAsync(services, canary, stable: (200, 0, 20), canaryFigures: (50, 0, 30));
        Assert.Equal((CanaryPhase.RolledBack, 0), Phase(canary));
    }

    [Fact]
    public async Task A_slow_canary_fails_its_p99_check()
    {
        var services = Start();
        var canary = services.GetRequiredService<CanaryController>();
        WorkloadsOf(services, "v1", "v2");
        await canary.RunOnceAsync(Ct);

        await IntervalAsync(services, canary, stable: (200, 0, 20), canaryFigures: (50, 0, 2_000));

        Assert.Equal(1, State(canary).FailedChecks);
        Assert.Contains("> 500 ms (MaxP99)", State(canary).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_enough_traffic_or_reports_the_canary_waits_and_counts_no_check()
    {
        var services = Start();
        var canary = services.GetRequiredService<CanaryController>();
        WorkloadsOf(services, "v1", "v2");
        await canary.RunOnceAsync(Ct);

        await IntervalAsync(services, canary, stable: (200, 0, 20), canaryFigures: (3, 0, 30));
        Assert.Equal((CanaryPhase.Waiting, 20), Phase(canary));
        Assert.Contains("served 3 request(s) in the interval; 10 are needed", State(canary).Reason, StringComparison.Ordinal);

        // No report at all for an interval: still waiting, never moved up.
        _time.Advance(Interval);
        await canary.RunOnceAsync(Ct);
        Assert.Equal((CanaryPhase.Waiting, 20), Phase(canary));
        Assert.Contains("no report from frontend's workloads", State(canary).Reason, StringComparison.Ordinal);
        Assert.Equal(0, State(canary).FailedChecks);

        // Figures again: it goes on.
        await IntervalAsync(services, canary, stable: (200, 0, 20), canaryFigures: (50, 0, 30));
        Assert.Equal((CanaryPhase.Progressing, 50), Phase(canary));
    }

    [Fact]
    public async Task A_canary_subset_with_no_endpoints_waits_with_the_reason_and_never_starts()
    {
        var services = Start();
        var canary = services.GetRequiredService<CanaryController>();
        WorkloadsOf(services, "v1");

        await canary.RunOnceAsync(Ct);

        Assert.Equal((CanaryPhase.Waiting, 0), Phase(canary));
        Assert.Contains("subset 'v2' of orders has no endpoints", State(canary).Reason, StringComparison.Ordinal);
        Assert.Equal(0, CanaryWeight(services));
    }

    [Fact]
    public async Task After_a_restart_the_control_service_waits_a_whole_interval_of_reports_before_judging()
    {
        var first = Start();
        var canary = first.GetRequiredService<CanaryController>();
        WorkloadsOf(first, "v1", "v2");
        await canary.RunOnceAsync(Ct);
        await IntervalAsync(first, canary, stable: (200, 0, 20), canaryFigures: (50, 0, 30));
        Assert.Equal((CanaryPhase.Progressing, 50), Phase(canary));

        // The control service is down for a while and comes back: its state is read back (the step it reached), its
        // reports are gone. One report just after the start must not be enough to promote.
        _time.Advance(TimeSpan.FromMinutes(3));
        var second = Start();
        var restarted = second.GetRequiredService<CanaryController>();
        WorkloadsOf(second, "v1", "v2");
        _time.Advance(TimeSpan.FromSeconds(1));
        Report(second, stable: (200, 0, 20), canary: (50, 0, 30));
        await restarted.RunOnceAsync(Ct);
        Assert.Equal((CanaryPhase.Waiting, 50), Phase(restarted));
        Assert.Contains("heard the callers' reports for 1 s of the 10 s interval", State(restarted).Reason, StringComparison.Ordinal);
        Assert.Equal(50, CanaryWeight(second));

        await IntervalAsync(second, restarted, stable: (200, 0, 20), canaryFigures: (50, 0, 30));
        Assert.Equal((CanaryPhase.Promoted, 100), Phase(restarted));
    }

    [Fact]
    public async Task An_operators_pause_promote_and_abort_win_over_the_analysis()
    {
        var services = Start();
        var canary = services.GetRequiredService<CanaryController>();
        WorkloadsOf(services, "v1", "v2");
        await canary.RunOnceAsync(Ct);

        var paused = await canary.ApplyAsync(Key, "pause", Ct);
        Assert.Equal(CanaryPhase.Paused, paused.State!.Phase);
        await IntervalAsync(services, canary, stable: (200, 0, 20), canaryFigures: (50, 0, 30));
        Assert.Equal((CanaryPhase.Paused, 20), Phase(canary));

        await canary.ApplyAsync(Key, "resume", Ct);
        await IntervalAsync(services, canary, stable: (200, 0, 20), canaryFigures: (50, 0, 30));
        Assert.Equal((CanaryPhase.Progressing, 50), Phase(canary));

        var aborted = await canary.ApplyAsync(Key, "abort", Ct);
        Assert.Equal((CanaryPhase.RolledBack, 0), (aborted.State!.Phase, aborted.State.Weight));
        Assert.Equal(0, CanaryWeight(services));

        var restarted = await canary.ApplyAsync(Key, "resume", Ct);
        Assert.Equal(CanaryPhase.Progressing, restarted.State!.Phase);
        await canary.RunOnceAsync(Ct);
        Assert.Equal(20, CanaryWeight(services));

        var promoted = await canary.ApplyAsync(Key, "promote", Ct);
        Assert.Equal((CanaryPhase.Promoted, 100), (promoted.State!.Phase, promoted.State.Weight));
        Assert.Equal(100, CanaryWeight(services));

        var unknown = await canary.ApplyAsync("frontend/orders/nope", "pause", Ct);
        Assert.Equal("canary-not-found", unknown.Refusal!.Value.Reason);
        var wrong = await canary.ApplyAsync(Key, "skip", Ct);
        Assert.Equal("action-invalid", wrong.Refusal!.Value.Reason);
    }

    [Fact]
    public void A_report_is_checked_field_by_field()
    {
        long[] Buckets(int n = 0) => new long[LatencyHistogram.BucketCount + n];
        Assert.Null(CanaryEndpoints.Validate(new CanaryTrafficReport([new("orders", "canary", "v2", 10, 1, Buckets())])));
        Assert.Contains("'routes[0].latency' must have 21 buckets", CanaryEndpoints.Validate(new CanaryTrafficReport([new("orders", "canary", "v2", 10, 1, Buckets(-1))])), StringComparison.Ordinal);
        Assert.Contains("failures (11) 0 to requests", CanaryEndpoints.Validate(new CanaryTrafficReport([new("orders", "canary", "v2", 10, 11, Buckets())])), StringComparison.Ordinal);
        Assert.Contains("'routes[0].destination' is 'Orders!'", CanaryEndpoints.Validate(new CanaryTrafficReport([new("Orders!", "canary", "v2", 10, 1, Buckets())])), StringComparison.Ordinal);
        Assert.Contains("'routes[0].subset'", CanaryEndpoints.Validate(new CanaryTrafficReport([new("orders", "canary", "v 2", 10, 1, Buckets())])), StringComparison.Ordinal);
        Assert.Contains("at most 256", CanaryEndpoints.Validate(new CanaryTrafficReport([.. Enumerable.Repeat(new CanaryRouteTraffic("orders", "canary", "v2", 1, 0, Buckets()), 257)])), StringComparison.Ordinal);
        Assert.Equal("'routes' is missing.", CanaryEndpoints.Validate(null));
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var app in _apps)
        {
            await app.DisposeAsync();
        }

        _data.Dispose();
    }

    /// <summary>A control service (not started) whose central policy for frontend has a canary route to orders.</summary>
    private IServiceProvider Start()
    {
        const string Route = "ControlPlane:Policy:Services:frontend:Policy:Destinations:orders:Routes:0";
        var app = ControlPlaneApplication.Create(
            [
                "--urls", "https://127.0.0.1:0",
                $"--ControlPlane:DataDirectory={_data.Path}",
                $"--{Route}:Name=canary",
                $"--{Route}:Canary:StableSubset=v1",
                $"--{Route}:Canary:CanarySubset=v2",
                $"--{Route}:Canary:Steps:0=20",
                $"--{Route}:Canary:Steps:1=50",
                $"--{Route}:Canary:Interval=00:00:10",
                $"--{Route}:Canary:MinRequests=10",
                $"--{Route}:Canary:FailedChecks=2",
            ],
            builder => builder.Services.AddSingleton<TimeProvider>(_time));
        _apps.Add(app);
        return app.Services;
    }

    private void WorkloadsOf(IServiceProvider services, params string[] versions)
    {
        var registry = services.GetRequiredService<WorkloadRegistry>();
        foreach (var version in versions)
        {
            registry.Record(new WorkloadStatus
            {
                SpiffeId = "spiffe://mesh.local/ns/default/svc/orders",
                Instance = $"orders-{version}",
                ServiceVersion = version,
                CertificateSerial = "01",
                NotAfter = _time.GetUtcNow().AddHours(1),
                LastSeen = _time.GetUtcNow(),
            });
        }
    }

    /// <summary>One interval: frontend's workloads report, the clock moves past the interval, the controller runs.</summary>
    private async Task IntervalAsync(IServiceProvider services, CanaryController canary, (long Requests, long Failures, double Ms) stable, (long Requests, long Failures, double Ms) canaryFigures)
    {
        _time.Advance(Interval / 2);
        Report(services, stable, canaryFigures);
        _time.Advance(Interval / 2);
        await canary.RunOnceAsync(Ct);
    }

    private static void Report(IServiceProvider services, (long Requests, long Failures, double Ms) stable, (long Requests, long Failures, double Ms) canary)
    {
        CanaryRouteTraffic Entry(string subset, (long Requests, long Failures, double Ms) figures)
        {
            var latency = new long[LatencyHistogram.BucketCount];
            latency[LatencyHistogram.BucketOf(figures.Ms)] = figures.Requests;
            return new CanaryRouteTraffic("orders", "canary", subset, figures.Requests, figures.Failures, latency);
        }

        services.GetRequiredService<CanaryTrafficStore>().Add("frontend", new CanaryTrafficReport([Entry("v1", stable), Entry("v2", canary)]));
    }

    private static CanaryState State(CanaryController canary) => Assert.Single(canary.States);

    private static (CanaryPhase, int) Phase(CanaryController canary) => (State(canary).Phase, State(canary).Weight);

    /// <summary>The canary's weight as the stored central policy says: what workloads receive.</summary>
    private static int CanaryWeight(IServiceProvider services)
    {
        var json = services.GetRequiredService<CentralPolicy>().Get("frontend")!.Json;
        using var document = JsonDocument.Parse(json);
        var split = document.RootElement.GetProperty("Policy").GetProperty("Destinations").GetProperty("orders").GetProperty("Routes")[0];
        if (!split.TryGetProperty("Split", out var weights))
        {
            return 0; // the seed: no Split, all traffic on the stable subset
        }

        return int.Parse(weights.GetProperty("v2").ToString(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
