using System.Diagnostics;
using System.Diagnostics.Metrics;
using BenchmarkDotNet.Attributes;

namespace MeshKit.Benchmarks.Support;

/// <summary>
/// Runs every benchmark twice: with telemetry off (nobody listens, as in an app without OpenTelemetry) and on (an
/// ActivityListener that records every activity of every source, and a MeterListener that enables every instrument, as
/// an OpenTelemetry SDK with tracing and metrics would). The "on" figure is what a traced production app pays.
/// </summary>
public abstract class TelemetryToggle
{
    private ActivityListener? _activities;
    private MeterListener? _meters;

    [Params(false, true)]
    public bool Tracing { get; set; }

    protected void StartTelemetry()
    {
        if (!Tracing)
        {
            return;
        }

        _activities = new ActivityListener
        {
            ShouldListenTo = static _ => true,
            Sample = static (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            SampleUsingParentId = static (ref ActivityCreationOptions<string> _) => ActivitySamplingResult.AllDataAndRecorded,
        };
        ActivitySource.AddActivityListener(_activities);

        _meters = new MeterListener { InstrumentPublished = static (instrument, listener) => listener.EnableMeasurementEvents(instrument) };
        _meters.SetMeasurementEventCallback<long>(static (_, _, _, _) => { });
        _meters.SetMeasurementEventCallback<double>(static (_, _, _, _) => { });
        _meters.SetMeasurementEventCallback<int>(static (_, _, _, _) => { });
        _meters.Start();
    }

    protected void StopTelemetry()
    {
        _activities?.Dispose();
        _meters?.Dispose();
        _activities = null;
        _meters = null;
    }
}
