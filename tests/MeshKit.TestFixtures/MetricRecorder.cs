using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Testing;

/// <summary>One recorded measurement.</summary>
public sealed record MetricPoint(string Instrument, double Value, IReadOnlyDictionary<string, object?> Tags);

/// <summary>
/// Records the measurements of the <c>MeshKit</c> meter of one app (meters are told apart by their factory, so apps in the
/// same test process do not mix).
/// </summary>
public sealed class MetricRecorder : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentQueue<MetricPoint> _points = new();

    public MetricRecorder(IServiceProvider services, string meterName = "MeshKit")
    {
        var factory = services.GetRequiredService<IMeterFactory>();
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == meterName && ReferenceEquals(instrument.Meter.Scope, factory))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Add(instrument, value, tags));
        _listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) => Add(instrument, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Add(instrument, value, tags));
        _listener.Start();
    }

    public IReadOnlyList<MetricPoint> Points => [.. _points];

    /// <summary>Sums a counter's measurements, optionally only those with a tag value.</summary>
    public double Sum(string instrument, string? tag = null, object? value = null) =>
        _points.Where(p => p.Instrument == instrument && (tag is null || Equals(p.Tags.GetValueOrDefault(tag)?.ToString(), value?.ToString()))).Sum(p => p.Value);

    /// <summary>Reads observable instruments now.</summary>
    public void Collect() => _listener.RecordObservableInstruments();

    public void Dispose() => _listener.Dispose();

    private void Add(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var map = new Dictionary<string, object?>(tags.Length);
        foreach (var tag in tags)
        {
            map[tag.Key] = tag.Value;
        }

        _points.Enqueue(new MetricPoint(instrument.Name, value, map));
    }
}
