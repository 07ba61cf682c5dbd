using System.Diagnostics;
using MeshKit.Telemetry;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Instrumentation.Http;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace MeshKit.Hosting;

/// <summary>
/// Wires OpenTelemetry for <c>AddMesh()</c>. Always: MeshKit's activity source and meter join whatever tracer and meter
/// providers the app builds, and .NET's per-attempt HttpClient spans are enriched with the mesh attempt (endpoint, attempt
/// number, retry reason). Nothing else is added to the app's own providers. For a signal the app has no provider for,
/// <see cref="MeshOpenTelemetryProviders"/> builds one at start (unless <c>Mesh:Telemetry:ConfigureOpenTelemetry</c> is
/// false): decided once every registration is in, so the order of <c>AddServiceDefaults()</c> and <c>AddMesh()</c> does
/// not matter.
/// </summary>
internal static class MeshOpenTelemetry
{
    public static void Add(IServiceCollection services)
    {
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

        // First of MeshKit's hosted services: the providers exist before the certificate is asked for.
        services.AddSingleton<MeshOpenTelemetryProviders>();
        services.AddHostedService(sp => sp.GetRequiredService<MeshOpenTelemetryProviders>());
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

/// <summary>
/// OpenTelemetry providers MeshKit builds for an app that has none of its own. "None" is decided per signal when the host
/// starts, from the finished service collection: no <see cref="TracerProvider"/> (or <see cref="MeterProvider"/>) is
/// registered, that is, nothing called <c>AddOpenTelemetry().WithTracing()</c> (<c>.WithMetrics()</c>); Aspire's
/// ServiceDefaults do, in either order with <c>AddMesh()</c>. An app that set up a signal chose its instrumentation and
/// exporters: MeshKit adds only its source or meter there. A provider MeshKit builds has MeshKit's source or meter, ASP.NET
/// Core and HttpClient instrumentation (and the <c>Grpc.Net.Client</c> source, which keeps a gRPC call's trace in one
/// piece), and the OTLP exporter when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set. It is MeshKit's own (not in the app's
/// services): hooks registered with <c>ConfigureOpenTelemetryTracerProvider</c> apply to the app's providers, so an app
/// that adds an exporter of its own sets up the signal with <c>AddOpenTelemetry().WithTracing(...)</c>.
/// </summary>
internal sealed class MeshOpenTelemetryProviders(
    IServiceProvider services,
    IOptions<MeshOptions> options,
    IConfiguration configuration) : IHostedService, IDisposable
{
    // .NET's http.client.* metrics tag connections with the peer's IP; MeshKit keeps those tags off by default (cardinality).
    private static readonly string[] ConnectionInstruments = ["http.client.open_connections", "http.client.connection.duration"];

    /// <summary>Gets the tracer provider MeshKit built, or <see langword="null"/> when the app has its own or the setting is off.</summary>
    public TracerProvider? Tracing { get; private set; }

    /// <summary>Gets the meter provider MeshKit built, or <see langword="null"/> when the app has its own or the setting is off.</summary>
    public MeterProvider? Metrics { get; private set; }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!options.Value.Telemetry.ConfigureOpenTelemetry || Tracing is not null || Metrics is not null)
        {
            return Task.CompletedTask;
        }

        var registered = services.GetRequiredService<IServiceProviderIsService>();
        var export = !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        if (!registered.IsService(typeof(TracerProvider)))
        {
            Tracing = BuildTracing(export);
        }

        if (!registered.IsService(typeof(MeterProvider)))
        {
            Metrics = BuildMetrics(export);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        Tracing?.ForceFlush(1_000);
        Metrics?.ForceFlush(1_000);
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        Tracing?.Dispose();
        Metrics?.Dispose();
    }

    private TracerProvider BuildTracing(bool export)
    {
        // The app's HttpClient instrumentation settings (MeshKit's enrichment among them) apply to this provider too.
        var app = services.GetRequiredService<IOptionsMonitor<HttpClientTraceInstrumentationOptions>>().CurrentValue;
        var tracing = Sdk.CreateTracerProviderBuilder()
            .ConfigureServices(s => s.AddSingleton(configuration))
            .AddAspNetCoreInstrumentation()
            .AddHttpClientInstrumentation(o =>
            {
                o.EnrichWithHttpRequestMessage = app.EnrichWithHttpRequestMessage;
                o.EnrichWithHttpResponseMessage = app.EnrichWithHttpResponseMessage;
                o.EnrichWithException = app.EnrichWithException;
                o.FilterHttpRequestMessage = app.FilterHttpRequestMessage;
                o.RecordException = app.RecordException;
            })
            .AddSource(MeshTelemetry.SourceName, "Grpc.Net.Client");
        if (export)
        {
            tracing.AddOtlpExporter();
        }

        return tracing.Build();
    }

    private MeterProvider BuildMetrics(bool export)
    {
        var metrics = Sdk.CreateMeterProviderBuilder()
            .ConfigureServices(s => s.AddSingleton(configuration))
            .AddMeter(MeshMetrics.MeterName)
            .AddAspNetCoreInstrumentation()
            .AddHttpClientInstrumentation();
        foreach (var instrument in ConnectionInstruments)
        {
            metrics.AddView(instrument, new MetricStreamConfiguration
            {
                TagKeys = ["http.connection.state", "network.protocol.version", "server.address", "server.port", "url.scheme"],
            });
        }

        if (export)
        {
            metrics.AddOtlpExporter();
        }

        return metrics.Build();
    }
}
