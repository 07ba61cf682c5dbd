namespace MeshKit;

/// <summary>What <c>AddMesh()</c> does with OpenTelemetry beyond adding MeshKit's activity source and meter.</summary>
public sealed class MeshTelemetryOptions
{
    /// <summary>
    /// Gets or sets whether MeshKit builds OpenTelemetry providers for an app that has none of its own. Default
    /// <see langword="true"/>: for each signal (traces, metrics) the app did not set up itself (no
    /// <c>AddOpenTelemetry().WithTracing()</c> or <c>.WithMetrics()</c>, as Aspire ServiceDefaults call), MeshKit builds a
    /// provider with ASP.NET Core and HttpClient instrumentation, and the OTLP exporter when
    /// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set. With <see langword="false"/>, MeshKit builds none. Either way, MeshKit's
    /// activity source and meter join the app's own providers, and nothing is added to them.
    /// </summary>
    public bool ConfigureOpenTelemetry { get; set; } = true;
}
