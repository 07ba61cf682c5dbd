using System.Collections.Concurrent;
using System.Diagnostics.Tracing;
using System.Globalization;
using MeshKit.Benchmarks.Support;

namespace MeshKit.Benchmarks.Profiling;

/// <summary>
/// Which types the mesh client's requests allocate, sampled by the runtime's allocation ticks (one event per ~100 kB
/// allocated, naming the type that crossed the mark), over many requests through the same chain as
/// <c>HandlerChainBenchmarks</c>. Run with <c>-- --allocations [requests]</c>; BenchmarkDotNet gives the exact bytes,
/// this says where they go.
/// </summary>
internal static class AllocationProfile
{
    public static async Task<int> RunAsync(int requests, bool tracing)
    {
        var telemetry = new Telemetry { Tracing = tracing };
        telemetry.Start();
        using var fixture = new MeshClientFixture();
        await fixture.WarmAsync();

        var baseline = await MeasureAsync(() => fixture.Baseline.GetAsync(MeshClientFixture.BaselineUri), requests, sample: false);
        var mesh = await MeasureAsync(() => fixture.Mesh.GetAsync(MeshClientFixture.MeshUri), requests, sample: true);
        telemetry.Stop();

        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(inv, $"Tracing {(tracing ? "on" : "off")}, {requests:N0} sequential requests each."));
        Console.WriteLine(string.Create(inv, $"plain factory client: {baseline.BytesPerRequest:F0} B per request"));
        Console.WriteLine(string.Create(inv, $"mesh client:          {mesh.BytesPerRequest:F0} B per request (+{mesh.BytesPerRequest - baseline.BytesPerRequest:F0} B)"));
        Console.WriteLine();
        Console.WriteLine("Sampled allocations of the mesh client, by type (estimated bytes per request):");
        var total = mesh.Samples.Values.Sum();
        foreach (var (type, bytes) in mesh.Samples.OrderByDescending(p => p.Value).Take(40))
        {
            Console.WriteLine(string.Create(inv, $"{bytes * mesh.BytesPerRequest / total,8:F0} B  {type}"));
        }

        return 0;
    }

    private static async Task<(double BytesPerRequest, Dictionary<string, double> Samples)> MeasureAsync(Func<Task<HttpResponseMessage>> call, int requests, bool sample)
    {
        using var listener = sample ? new AllocationTicks() : null;
        var before = GC.GetTotalAllocatedBytes(precise: true);
        for (var i = 0; i < requests; i++)
        {
            using var response = await call();
        }

        var bytes = GC.GetTotalAllocatedBytes(precise: true) - before;
        return (bytes / (double)requests, listener?.Snapshot() ?? []);
    }

    private sealed class Telemetry : TelemetryToggle
    {
        public void Start() => StartTelemetry();

        public void Stop() => StopTelemetry();
    }
}
