using MeshKit.Telemetry;
using System.Diagnostics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry;
using OpenTelemetry.Instrumentation.Http;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace MeshKit.Hosting;

/// <summary>
/// Wires OpenTelemetry for <c>AddMesh()</c>. Always: MeshKit's activity source and meter join whatever tracer and meter
/// providers the app builds, and .NET's per-attempt HttpClient spans are enriched with the mesh attempt (endpoint, attempt
/// number, retry reason). Unless <c>Mesh:Telemetry:ConfigureOpenTelemetry</c> is false: ASP.NET Core and HttpClient
/// instrumentation, and the OTLP exporter when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set (Aspire sets it) and the app has
/// not called <c>UseOtlpExporter()</c> already.
/// </summary>
internal static class MeshOpenTelemetry
{
    public const string ConfigureKey = "Mesh:Telemetry:ConfigureOpenTelemetry";

    // .NET's http.client.* metrics tag connections with the peer's IP; MeshKit keeps those tags off by default (cardinality).
    private static readonly string[] ConnectionInstruments = ["http.client.open_connections", "http.client.connection.duration"];

    public static void Add(IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.ConfigureOpenTelemetryTracerProvider(tracing => tracing.AddSource(MeshTelemetry.SourceName));
        services.ConfigureOpenTelemetryMeterProvider(metrics => metrics.AddMeter(MeshMetrics.MeterName));
        services.Configure<HttpClientTraceInstrumentationOptions>(options =>
        {
            var previous = options.EnrichWithHttpRequestMessage;
            options.EnrichWithHttpRequestMessage = (activity, request) =>
            {
                previous?.Invoke(activity, request);
                EnrichAttempt(activity, request);
            };
        });

        if (!builder.Configuration.GetValue(ConfigureKey, defaultValue: true))
        {
            return;
        }

        var otel = services.AddOpenTelemetry();
        // Grpc.Net.Client starts an activity around every call, recorded or not, and MeshKit's logical span is its child:
        // recording it keeps a gRPC call's trace in one piece.
        otel.WithTracing(tracing => tracing.AddAspNetCoreInstrumentation().AddHttpClientInstrumentation().AddSource("Grpc.Net.Client"));
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

        var alreadyExporting = services.Any(d => d.ServiceType.FullName == "OpenTelemetry.Exporter.UseOtlpExporterRegistration");
        if (!alreadyExporting && !string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
        {
            otel.UseOtlpExporter();
        }
    }

    private static void EnrichAttempt(Activity activity, HttpRequestMessage request)
    {
        if (!request.Options.TryGetValue(MeshAttemptTags.OptionsKey, out var tags))
        {
            return;
        }

        activity.SetTag(MeshTelemetry.Attributes.DestinationService, tags.DestinationService);
        activity.SetTag(MeshTelemetry.Attributes.Route, tags.Route);
        activity.SetTag(MeshTelemetry.Attributes.Subset, tags.Subset);
        activity.SetTag(MeshTelemetry.Attributes.Attempt, TagValues.Box(tags.Attempt));
        activity.SetTag(MeshTelemetry.Attributes.Endpoint, tags.Endpoint);
        if (tags.RetryReason is not null && tags.Attempt > 0)
        {
            activity.SetTag(MeshTelemetry.Attributes.RetryReason, tags.RetryReason);
        }

        if (tags.PeerAddress is not null)
        {
            activity.SetTag("network.peer.address", tags.PeerAddress);
            activity.SetTag("network.peer.port", tags.PeerPort);
        }
    }
}
