using MeshKit.Tests.Identity;
using MeshKit.ControlChannel;
using System.Collections.Concurrent;
using System.Diagnostics;
using MeshKit.Hosting;
using MeshKit.Identity;
using MeshKit.Testing;
using MeshKit.Tests.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace MeshKit.Tests.ControlChannel;

/// <summary>
/// The renewal loop of a real workload against a real control service, in virtual time: the workload's clock is a fake
/// one, so an hour-long certificate is renewed at its renewal point without waiting for it, and a failing renewal backs
/// off on the same clock. Certificates are issued on the wire, by the control service's real clock; rotation under load
/// with real waits is in <see cref="RotationTests"/>.
/// </summary>
[Trait("Area", "Identity")]
public sealed class RenewalLoopTests
{
    // A real-time bound on what must follow at once from moving the virtual clock (a renewal is one call on loopback).
    private static readonly TimeSpan Promptly = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task The_workload_renews_when_the_mesh_clock_reaches_the_renewal_point_and_not_before()
    {
        await using var controlPlane = await ControlPlaneHost.StartAsync(HourLongCertificates());
        var clock = new RenewalClock(DateTimeOffset.UtcNow);

        // Draw 0.75 from the mesh's random source: jitter +0.05, so renewal at 0.55 of the lifetime.
        await using var orders = await StartAsync(controlPlane, clock, new MeshRandom(new ScriptedRandom(0.75)), new Dictionary<string, string?>
        {
            ["Mesh:Identity:RenewalFraction"] = "0.5",
            ["Mesh:Identity:RenewalJitter"] = "0.1",
        });
        var identity = orders.Services.GetRequiredService<WorkloadIdentitySource>();
        var first = identity.Current!;

        // The loop waits on the mesh clock, for 0.55 of the lifetime counted from when the certificate arrived.
        var wait = await clock.NextRenewalWaitAsync();
        Assert.Equal(first.ReceivedAt, clock.GetUtcNow());
        Assert.Equal(((first.NotAfter - first.ReceivedAt) * 0.55).TotalMilliseconds, wait.TotalMilliseconds, tolerance: 1);

        clock.Advance(wait - TimeSpan.FromSeconds(1));
        Assert.Same(first, identity.Current);

        clock.Advance(TimeSpan.FromSeconds(1));
        await Eventually.WaitAsync(() => Renewed(orders), Promptly, "the renewal at the renewal point");
        Assert.NotEqual(first.SerialNumber, identity.Current!.SerialNumber);

        // The next renewal point counts from the new certificate's arrival, on the same clock.
        var second = identity.Current!;
        var next = await clock.NextRenewalWaitAsync();
        Assert.Equal(second.ReceivedAt, first.ReceivedAt + wait);
        Assert.Equal(((second.NotAfter - second.ReceivedAt) * 0.55).TotalMilliseconds, next.TotalMilliseconds, tolerance: 1);
    }

    [Fact]
    public async Task A_failing_renewal_backs_off_exponentially_on_the_mesh_clock_and_renews_before_expiry_once_the_control_service_is_back()
    {
        await using var controlPlane = await ControlPlaneHost.StartAsync(HourLongCertificates());
        var clock = new RenewalClock(DateTimeOffset.UtcNow);
        await using var orders = await StartAsync(controlPlane, clock, MeshRandom.Shared, new Dictionary<string, string?>
        {
            ["Mesh:Identity:RenewalJitter"] = "0",
            ["Mesh:Identity:RetryBaseDelay"] = "00:00:10",
            ["Mesh:Identity:RetryMaxDelay"] = "00:00:40",
        });
        var identity = orders.Services.GetRequiredService<WorkloadIdentitySource>();
        var first = identity.Current!;
        var wait = await clock.NextRenewalWaitAsync();

        await controlPlane.StopAsync();
        clock.Advance(wait);

        // Each retry waits between half and all of min(40 s, 10 s × 2^n): 5-10 s, 10-20 s, 20-40 s, then 20-40 s (capped).
        (double Min, double Max)[] expected = [(5, 10), (10, 20), (20, 40), (20, 40)];
        foreach (var (min, max) in expected)
        {
            var backoff = await clock.NextRenewalWaitAsync();
            Assert.InRange(backoff.TotalSeconds, min, max);
            Assert.Same(first, identity.Current);
            clock.Advance(backoff);
        }

        // The fifth attempt fails too; then the control service is back, and the next attempt renews over mTLS.
        var last = await clock.NextRenewalWaitAsync();
        Assert.Equal(5, orders.Metrics.Sum("mesh.identity.renewals", "mesh.outcome", "failure"));
        await controlPlane.StartAsync();
        clock.Advance(last);

        await Eventually.WaitAsync(() => Renewed(orders), Promptly, "the renewal once the control service is back");
        Assert.NotEqual(first.SerialNumber, identity.Current!.SerialNumber);
        Assert.True(clock.GetUtcNow() < first.NotAfter, "renewed only after the certificate expired");
        Assert.Equal(5, orders.Logs.Entries.Count(e => e.EventId.Id == 2003));
    }

    // Logged once the new certificate is in use; renewed with the current certificate (mTLS), not the join token.
    private static bool Renewed(MeshAppHost app) =>
        app.Logs.Entries.Any(e => e.EventId.Id == 2002 && e.Message.Contains("using mTLS", StringComparison.Ordinal));

    private static Dictionary<string, string?> HourLongCertificates() =>
        new(MeshTestBed.TokenSettings()) { ["ControlPlane:CertificateLifetime"] = "01:00:00" };

    private static Task<MeshAppHost> StartAsync(ControlPlaneHost controlPlane, RenewalClock clock, MeshRandom random, Dictionary<string, string?> settings) =>
        MeshAppHost.StartAsync(controlPlane, "orders", MeshTestBed.Token, settings, meshEndpoint: false, configureServices: services =>
        {
            services.AddSingleton<TimeProvider>(clock);
            services.AddSingleton(random);
        });

    /// <summary>
    /// A fake clock that reports the waits of the renewal loop, so a test moves time only once the loop is waiting (the
    /// loop's <c>Task.Delay</c> timers are told apart from the other components' by the method that asked for them).
    /// </summary>
    private sealed class RenewalClock(DateTimeOffset start) : FakeTimeProvider(start)
    {
        private readonly ConcurrentQueue<TimeSpan> _waits = new();
        private int _taken;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            if (AskedByRenewalLoop())
            {
                _waits.Enqueue(dueTime);
            }

            return base.CreateTimer(callback, state, dueTime, period);
        }

        // The first caller outside the runtime (Task.Delay) is the loop itself, not something the loop set off (the
        // control-service client's delayed disposal of its previous HttpClient, on a certificate change).
        private static bool AskedByRenewalLoop()
        {
            foreach (var frame in new StackTrace().GetFrames())
            {
                var type = frame.GetMethod()?.DeclaringType;
                if (type != typeof(RenewalClock) && type?.Namespace?.StartsWith("System", StringComparison.Ordinal) != true)
                {
                    return type?.FullName?.Contains("RenewLoopAsync", StringComparison.Ordinal) == true;
                }
            }

            return false;
        }

        /// <summary>Waits (in real time) for the loop's next wait to start, and returns how long it waits.</summary>
        public async Task<TimeSpan> NextRenewalWaitAsync()
        {
            await Eventually.WaitAsync(() => _waits.Count > _taken, Promptly, "the renewal loop to wait on the mesh clock");
            return _waits.ElementAt(_taken++);
        }
    }
}
