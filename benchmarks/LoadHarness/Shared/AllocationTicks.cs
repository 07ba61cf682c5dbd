// Shared by the load harness's apps and benchmarks/MeshKit.Benchmarks (linked into each).
using System.Collections.Concurrent;
using System.Diagnostics.Tracing;
using System.Globalization;

/// <summary>
/// Where a process's bytes go, by type: the runtime's sampled allocation ticks (one event per ~100 kB allocated, naming the
/// type that crossed the mark), summed by type name.
/// </summary>
internal sealed class AllocationTicks : EventListener
{
    private const EventKeywords GcKeyword = (EventKeywords)0x1;
    private readonly ConcurrentDictionary<string, double> _bytes = new();

    /// <summary>Gets the sampled bytes by type so far.</summary>
    public Dictionary<string, double> Snapshot() => new(_bytes);

    protected override void OnEventSourceCreated(EventSource eventSource)
    {
        if (eventSource.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(eventSource, EventLevel.Verbose, GcKeyword);
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs eventData)
    {
        if (eventData.EventName is not { } name || !name.StartsWith("GCAllocationTick", StringComparison.Ordinal) || eventData.PayloadNames is null)
        {
            return;
        }

        var type = "?";
        double amount = 0;
        for (var i = 0; i < eventData.PayloadNames.Count; i++)
        {
            switch (eventData.PayloadNames[i])
            {
                case "TypeName":
                    type = eventData.Payload![i] as string ?? "?";
                    break;
                case "AllocationAmount64":
                    amount = Convert.ToDouble(eventData.Payload![i], CultureInfo.InvariantCulture);
                    break;
            }
        }

        _bytes.AddOrUpdate(type, amount, (_, v) => v + amount);
    }
}
