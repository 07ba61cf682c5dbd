using System.Diagnostics.Metrics;

namespace MeshKit.ControlPlane;

/// <summary>The control service's instruments, under the same meter name as the workloads' (<c>MeshKit</c>).</summary>
internal sealed class ControlPlaneMetrics
{
    private readonly Counter<long> _signatures;
    private readonly Counter<long> _watches;

    public ControlPlaneMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create("MeshKit");
        _signatures = meter.CreateCounter<long>("mesh.control_plane.sign.requests", "{request}", "Sign requests, by outcome (issued or the refusal reason).");
        _watches = meter.CreateCounter<long>("mesh.control_plane.watch.requests", "{request}", "Control-channel watch requests received.");
    }

    public void RecordSign(string outcome) => _signatures.Add(1, new KeyValuePair<string, object?>("mesh.outcome", outcome));

    public void RecordWatch() => _watches.Add(1);
}
