using System.Globalization;
using System.Net;
using System.Net.Sockets;
using MeshKit.ControlChannel;
using MeshKit.Consul;
using Microsoft.Extensions.Logging;

namespace MeshKit.Discovery;

/// <summary>
/// The control service's replicas as Consul lists them (<c>Mesh:ControlPlane:ConsulService</c>): the passing instances of
/// that service, followed with a blocking query, as <c>https://&lt;address&gt;:&lt;port&gt;/</c>. Statically stable: while
/// Consul is unreachable, and when it lists no passing instance, the last non-empty list stays; before Consul first lists
/// one, the configured addresses (<c>Mesh:ControlPlane:Address</c>, <c>:Addresses</c>), if any, are used. Where the list
/// points never decides trust: every replica must prove the control service's SPIFFE ID under the mesh's roots.
/// </summary>
internal sealed partial class ConsulControlPlaneAddresses : IControlPlaneAddresses
{
    private readonly ConsulServiceWatcher _watcher;
    private readonly string _service;
    private readonly IReadOnlyList<Uri> _configured;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private ConsulWatchedService? _watch;
    private ConsulServiceSet? _mappedFrom;
    private IReadOnlyList<Uri> _known = [];
    private bool _emptyLogged;

    public ConsulControlPlaneAddresses(ConsulServiceWatcher watcher, string service, IReadOnlyList<Uri> configured, ILogger<ConsulControlPlaneAddresses> logger)
    {
        _watcher = watcher;
        _service = service;
        _configured = configured;
        _logger = logger;
    }

    public IReadOnlyList<Uri> Current
    {
        get
        {
            var known = Refresh();
            return known.Count > 0 ? known : _configured;
        }
    }

    public string Describe()
    {
        var watch = Watch();
        var known = Current;
        var listed = known.Count == 0 ? "none known yet" : string.Join(", ", known);
        var consul = watch.Current is null
            ? watch.LastError is { } error ? $"; Consul has not answered yet: {error.Message}" : "; Consul has not answered yet"
            : watch.ConsecutiveFailures > 0 ? $"; Consul unreachable for {watch.Staleness.TotalSeconds:0} s, using the last known list" : string.Empty;
        return $"the passing instances of Consul service '{_service}': {listed}{consul}";
    }

    public async ValueTask<IReadOnlyList<Uri>> WaitAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            // The token of the set being looked at: a change after this read fires it, so no answer is missed.
            var watch = Watch();
            var changed = watch.GetChangeToken();
            var known = Current;
            if (known.Count > 0)
            {
                return known;
            }

            var next = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using (changed.RegisterChangeCallback(static state => ((TaskCompletionSource)state!).TrySetResult(), next))
            {
                await next.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Maps Consul's latest answer when it changed; an empty answer keeps the list known before.</summary>
    private IReadOnlyList<Uri> Refresh()
    {
        var set = Watch().Current;
        if (set is null || ReferenceEquals(set, Volatile.Read(ref _mappedFrom)))
        {
            return Volatile.Read(ref _known);
        }

        lock (_gate)
        {
            if (ReferenceEquals(set, _mappedFrom))
            {
                return _known;
            }

            var mapped = Map(set);
            if (mapped.Count > 0)
            {
                if (!SameList(mapped, _known))
                {
                    LogReplicas(_logger, _service, mapped.Count, string.Join(", ", mapped));
                }

                _known = mapped;
                _emptyLogged = false;
            }
            else if (!_emptyLogged)
            {
                _emptyLogged = true;
                LogNoReplicas(_logger, _service, _known.Count);
            }

            Volatile.Write(ref _mappedFrom, set);
            return _known;
        }
    }

    // The watcher hands out one watch per service name, so a race here starts nothing twice.
    private ConsulWatchedService Watch() => _watch ??= _watcher.Watch(_service);

    private static List<Uri> Map(ConsulServiceSet set)
    {
        var list = new List<Uri>(set.Instances.Count);
        foreach (var entry in set.Instances)
        {
            var host = entry.EffectiveAddress;
            if (string.IsNullOrEmpty(host) || entry.Service.Port is <= 0 or > 65535)
            {
                continue;
            }

            if (IPAddress.TryParse(host, out var ip) && ip.AddressFamily == AddressFamily.InterNetworkV6)
            {
                host = "[" + ip + "]";
            }

            if (Uri.TryCreate($"https://{host}:{entry.Service.Port.ToString(CultureInfo.InvariantCulture)}/", UriKind.Absolute, out var uri) && !list.Contains(uri))
            {
                list.Add(uri);
            }
        }

        return list;
    }

    private static bool SameList(List<Uri> a, IReadOnlyList<Uri> b)
    {
        if (a.Count != b.Count)
        {
            return false;
        }

        foreach (var uri in a)
        {
            if (!b.Contains(uri))
            {
                return false;
            }
        }

        return true;
    }

    [LoggerMessage(EventId = 3130, Level = LogLevel.Information, Message = "The control service's replicas, from Consul service {Service}: {Count} ({Replicas}).")]
    private static partial void LogReplicas(ILogger logger, string service, int count, string replicas);

    [LoggerMessage(EventId = 3131, Level = LogLevel.Warning, Message = "Consul lists no passing instance of the control service's {Service}; keeping the {Count} replica(s) known before.")]
    private static partial void LogNoReplicas(ILogger logger, string service, int count);
}
