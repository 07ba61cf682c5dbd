// Shared by the caller and the upstream of the load harness (linked into both projects).
using System.Globalization;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

/// <summary>What the caller and the upstream of every topology add beside their one route.</summary>
internal static class BenchApp
{
    /// <summary>The path that answers this process's <c>GC.GetTotalAllocatedBytes(precise: true)</c>, as plain text.</summary>
    public const string AllocatedPath = "/_bench/allocated";

    // .NET's http.client.* connection metrics, with the tag keys MeshKit keeps (the same views as AddMesh()).
    private static readonly string[] ConnectionInstruments = ["http.client.open_connections", "http.client.connection.duration"];

    /// <summary>
    /// The OpenTelemetry setup <c>AddMesh()</c> turns on by default (src/MeshKit/Hosting/MeshOpenTelemetry.cs), hand-wired:
    /// ASP.NET Core and HttpClient tracing and metrics, the same two views, no exporter, the SDK's default sampler
    /// (ParentBased(AlwaysOn)). What MeshKit adds on top (its own source, meter and span tags) is the mesh's cost and
    /// is left out. Keep this in step with MeshOpenTelemetry.Add, or direct-mtls-h2-otel stops being like for like.
    /// </summary>
    public static void AddHandWiredOpenTelemetry(IServiceCollection services)
    {
        var otel = services.AddOpenTelemetry();
        otel.WithTracing(tracing => tracing.AddAspNetCoreInstrumentation().AddHttpClientInstrumentation());
        otel.WithMetrics(metrics =>
        {
            metrics.AddAspNetCoreInstrumentation().AddHttpClientInstrumentation();
            foreach (var instrument in ConnectionInstruments)
            {
                metrics.AddView(instrument, new MetricStreamConfiguration
                {
                    TagKeys = ["http.connection.state", "network.protocol.version", "server.address", "server.port", "url.scheme"],
                });
            }
        });
    }

    /// <summary>
    /// Maps <see cref="AllocatedPath"/>: the harness reads it before and after each measured run and divides the difference
    /// by the requests wrk completed. One read is a few hundred bytes against hundreds of thousands of requests, and the
    /// counter is read first thing, so the figure is the load's alone.
    /// </summary>
    public static void MapAllocated(IEndpointRouteBuilder app)
    {
        // MESHKIT_BENCH_ALLOCATION_TYPES=<folder>: where the bytes go, by type (sampled allocation ticks, one per ~100 kB),
        // written to <folder>/<process name>-<pid>.txt on every read of the counter. For profiling only: the listener
        // costs CPU, so figures of such a run are not results.
        var folder = Environment.GetEnvironmentVariable("MESHKIT_BENCH_ALLOCATION_TYPES");
        var listener = string.IsNullOrEmpty(folder) ? null : new AllocationTicks();
        app.MapGet(AllocatedPath, () =>
        {
            var allocated = GC.GetTotalAllocatedBytes(precise: true);
            if (listener is not null)
            {
                var name = Path.GetFileNameWithoutExtension(Environment.ProcessPath) ?? "app";
                var path = Path.Combine(folder!, $"{name}-{Environment.ProcessId}.txt");
                File.WriteAllLines(path, listener.Snapshot().OrderByDescending(e => e.Value).Select(e => string.Create(CultureInfo.InvariantCulture, $"{e.Value,14:F0}  {e.Key}")));
            }

            return Results.Text(allocated.ToString(CultureInfo.InvariantCulture));
        });
    }
}
