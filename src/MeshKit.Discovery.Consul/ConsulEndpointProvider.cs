using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using MeshKit.Consul;
using MeshKit.Telemetry;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.ServiceDiscovery;

namespace MeshKit.Discovery;

/// <summary>
/// Discovery from Consul: <c>https://orders</c> resolves to the passing instances of Consul service <c>orders</c>
/// (see <see cref="ConsulServiceNames"/> for namespaces), each with its version, zone, weight and every Consul Meta
/// pair as an <see cref="IMeshEndpointMetadataFeature"/>. Identity is never read from here.
/// <para>
/// It reads the <see cref="ConsulServiceWatcher"/> singleton, whose blocking query pushes changes through a change
/// token (no polling) and keeps the last known instances while Consul is unreachable. Providers are cheap views over
/// that cache: Microsoft.Extensions.ServiceDiscovery may dispose its idle watchers (and these providers) after 10–20 s,
/// and the next one finds the last known instances at once. The instances of one Consul answer are converted once.
/// </para>
/// </summary>
internal sealed partial class ConsulEndpointProviderFactory : IMeshServiceEndpointProviderFactory
{
    /// <summary>The staleness gauge: seconds the Consul endpoints of a destination may be out of date.</summary>
    public const string StalenessInstrument = "mesh.discovery.staleness";

    private static readonly TimeSpan FirstAnswerCheck = TimeSpan.FromMilliseconds(50);

    private readonly ConsulServiceWatcher _watcher;
    private readonly MeshDestinationNames _names;
    private readonly string _agent;
    private readonly TimeSpan _firstAnswerTimeout;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, Destination> _destinations = new(StringComparer.Ordinal);

    public ConsulEndpointProviderFactory(
        ConsulServiceWatcher watcher,
        IOptions<ConsulOptions> consul,
        MeshDestinationNames names,
        MeshMetrics metrics,
        ILogger<ConsulEndpointProviderFactory> logger)
    {
        _watcher = watcher;
        _names = names;
        var settings = consul.Value;
        _agent = (settings.Address ?? ConsulOptions.DefaultAddress).GetLeftPart(UriPartial.Path) + (string.IsNullOrEmpty(settings.Datacenter) ? string.Empty : $" (datacenter {settings.Datacenter})");
        _firstAnswerTimeout = settings.RequestTimeout;
        _logger = logger;
        metrics.Meter.CreateObservableGauge(
            StalenessInstrument,
            ObserveStaleness,
            "s",
            "How long the Consul endpoints of a destination may have been out of date: 0 while its blocking query is healthy, otherwise the seconds since Consul last answered.");
    }

    public bool TryCreateProvider(ServiceEndpointQuery query, [NotNullWhen(true)] out IServiceEndpointProvider? provider)
    {
        if (!_names.TryParse(query.ServiceName, out var service, out var ns))
        {
            // Not a mesh name (example.com, localhost, three labels, an undeclared namespace, mesh-system): never asked of Consul.
            provider = null;
            return false;
        }

        var consulName = ConsulServiceNames.ForService(service, ns);
        var destination = _destinations.GetOrAdd(query.ServiceName, static (host, name) => new Destination(host, name), consulName);
        provider = new ConsulEndpointProvider(this, destination);
        return true;
    }

    private IEnumerable<Measurement<double>> ObserveStaleness()
    {
        foreach (var destination in _destinations.Values)
        {
            if (destination.Watch is { } watch)
            {
                yield return new Measurement<double>(watch.Staleness.TotalSeconds, new KeyValuePair<string, object?>("mesh.destination.service", destination.Host));
            }
        }
    }

    private async ValueTask PopulateAsync(Destination destination, IServiceEndpointBuilder builder, CancellationToken cancellationToken)
    {
        ConsulWatchedService watch;
        try
        {
            watch = destination.Watch ??= _watcher.Watch(destination.ConsulName);
        }
        catch (ObjectDisposedException)
        {
            // The host is shutting down.
            return;
        }

        // The token before the set: a change in between fires the token, so nothing is missed.
        var token = watch.GetChangeToken();
        var set = watch.Current;
        if (set is null)
        {
            try
            {
                await WaitForFirstAnswerAsync(destination, watch, cancellationToken).ConfigureAwait(false);
            }
            catch (MeshDiscoveryException)
            {
                // The first answer fires this token, so the caller refreshes as soon as Consul answers.
                builder.AddChangeToken(token);
                throw;
            }

            token = watch.GetChangeToken();
            set = watch.Current!;
        }

        builder.AddChangeToken(token);
        var endpoints = destination.EndpointsOf(set, this);
        foreach (var endpoint in endpoints)
        {
            builder.Endpoints.Add(endpoint);
        }

        if (endpoints.Length == 0)
        {
            builder.Features.Get<DiscoveryNotes>()?.Add(DescribeEmpty(destination, set));
        }

        if (watch.ConsecutiveFailures > 0)
        {
            LogServingLastKnown(_logger, destination.Host, endpoints.Length, destination.ConsulName, _agent, watch.Staleness.TotalSeconds, watch.LastError?.Message ?? "no answer");
        }
    }

    /// <summary>Waits for Consul's first answer, but fails at once when the first request failed: the caller retries and the change token says when Consul answers.</summary>
    private async Task WaitForFirstAnswerAsync(Destination destination, ConsulWatchedService watch, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_firstAnswerTimeout);
        var first = watch.WaitForInstancesAsync(timeout.Token);
        try
        {
            // Only before the first answer: a short wait that also notices a failed request (the watch has no failure event).
            while (!first.IsCompleted)
            {
                if (watch.ConsecutiveFailures > 0)
                {
                    throw NotAnswered(destination, watch.LastError, null);
                }

                await Task.WhenAny(first, Task.Delay(FirstAnswerCheck, timeout.Token)).ConfigureAwait(false);
            }

            await first.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw NotAnswered(destination, watch.LastError, _firstAnswerTimeout);
        }
    }

    private MeshDiscoveryException NotAnswered(Destination destination, ConsulException? error, TimeSpan? waited)
    {
        var why = error?.Message ?? $"no answer within {waited?.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture)} s (Mesh:Discovery:Consul:RequestTimeout)";
        LogNotAnswered(_logger, destination.Host, destination.ConsulName, _agent, why);
        return new MeshDiscoveryException($"Consul at {_agent} has not answered yet for service '{destination.ConsulName}' (mesh destination '{destination.Host}'): {why}", error);
    }

    private string DescribeEmpty(Destination destination, ConsulServiceSet set) => set.Instances.Count == 0
        ? $"Consul at {_agent} has no passing instance of service '{destination.ConsulName}' (index {set.Index}); an instance is listed once every one of its checks passes."
        : $"Consul at {_agent} lists {set.Instances.Count} passing instance(s) of service '{destination.ConsulName}', but none has a usable address and port.";

    /// <summary>Turns one Consul answer into endpoints; called once per answer and destination.</summary>
    private ServiceEndpoint[] Convert(Destination destination, ConsulServiceSet set)
    {
        var list = new List<ServiceEndpoint>(set.Instances.Count);
        foreach (var entry in set.Instances)
        {
            var service = entry.Service;
            var address = entry.EffectiveAddress;
            if (!ConsulEndpointMapping.TryCreateEndPoint(address, service.Port, out var endPoint))
            {
                LogUnusableInstance(_logger, service.Id, destination.ConsulName, address, service.Port);
                continue;
            }

            var features = new FeatureCollection(1);
            features.Set<IMeshEndpointMetadataFeature>(Metadata(destination, service));
            list.Add(ServiceEndpoint.Create(endPoint, features));
        }

        LogResolved(_logger, destination.Host, destination.ConsulName, list.Count, set.Index);
        if (list.Count == 0)
        {
            LogNoPassingInstance(_logger, destination.ConsulName, destination.Host, set.Instances.Count);
        }

        return [.. list];
    }

    private MeshEndpointMetadata Metadata(Destination destination, ConsulService service)
    {
        var metadata = ConsulEndpointMapping.ReadMetadata(service.Meta, service.Weights?.Passing, out var rejectedWeight);
        if (rejectedWeight is not null)
        {
            LogBadWeight(_logger, service.Id, destination.ConsulName, rejectedWeight, metadata.Weight);
        }

        return metadata;
    }

    [LoggerMessage(EventId = 3101, Level = LogLevel.Warning, Message = "Consul is not answering; serving the {Count} last known endpoint(s) of {Destination} (Consul service {Service} at {Agent}), possibly {StalenessSeconds:0.#} s out of date: {Error}")]
    private static partial void LogServingLastKnown(ILogger logger, string destination, int count, string service, string agent, double stalenessSeconds, string error);

    [LoggerMessage(EventId = 3102, Level = LogLevel.Warning, Message = "Consul has no usable passing instance of service {Service} (mesh destination {Destination}; {Listed} listed); calls to it fail until one passes.")]
    private static partial void LogNoPassingInstance(ILogger logger, string service, string destination, int listed);

    [LoggerMessage(EventId = 3103, Level = LogLevel.Debug, Message = "Discovery for {Destination}: Consul service {Service} has {Count} usable passing instance(s) at index {Index}.")]
    private static partial void LogResolved(ILogger logger, string destination, string service, int count, ulong index);

    [LoggerMessage(EventId = 3104, Level = LogLevel.Warning, Message = "Consul instance {ServiceId} of {Service} has address '{Address}' and port {Port}, which cannot be called; it is left out.")]
    private static partial void LogUnusableInstance(ILogger logger, string serviceId, string service, string address, int port);

    [LoggerMessage(EventId = 3105, Level = LogLevel.Warning, Message = "Consul instance {ServiceId} of {Service} has Meta weight '{Weight}', which is not a whole number from 0 to 1000000; using {Used} (from its Consul weights).")]
    private static partial void LogBadWeight(ILogger logger, string serviceId, string service, string weight, int used);

    [LoggerMessage(EventId = 3106, Level = LogLevel.Warning, Message = "Discovery for {Destination}: Consul at {Agent} has not answered yet for service {Service}: {Error}")]
    private static partial void LogNotAnswered(ILogger logger, string destination, string service, string agent, string error);

    /// <summary>One destination host and what Consul last said about it; shared by every provider created for it.</summary>
    private sealed class Destination(string host, string consulName)
    {
        private Converted? _converted;

        public string Host { get; } = host;

        public string ConsulName { get; } = consulName;

        public ConsulWatchedService? Watch { get; set; }

        public ServiceEndpoint[] EndpointsOf(ConsulServiceSet set, ConsulEndpointProviderFactory owner)
        {
            var converted = Volatile.Read(ref _converted);
            if (converted is not null && ReferenceEquals(converted.Set, set))
            {
                return converted.Endpoints;
            }

            var endpoints = owner.Convert(this, set);
            Volatile.Write(ref _converted, new Converted(set, endpoints));
            return endpoints;
        }

        private sealed record Converted(ConsulServiceSet Set, ServiceEndpoint[] Endpoints);
    }

    /// <summary>A view of one destination over the watcher's cache; disposing it leaves the cache (and its watch) running.</summary>
    private sealed class ConsulEndpointProvider(ConsulEndpointProviderFactory owner, Destination destination) : IServiceEndpointProvider
    {
        public ValueTask PopulateAsync(IServiceEndpointBuilder endpoints, CancellationToken cancellationToken) =>
            owner.PopulateAsync(destination, endpoints, cancellationToken);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;

        public override string ToString() => $"MeshKit Consul ({destination.ConsulName})";
    }
}
