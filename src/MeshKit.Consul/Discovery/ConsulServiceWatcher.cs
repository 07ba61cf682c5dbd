using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace MeshKit.Consul;

/// <summary>
/// Keeps, per service name, the last known passing instances from a blocking query on
/// <c>/v1/health/service/&lt;name&gt;?passing</c>, and says when they change.
/// <para>
/// Register it as a singleton: it must outlive its consumers. Microsoft.Extensions.ServiceDiscovery disposes idle
/// watchers after 10–20 s and hands provider exceptions to callers; this cache sits below both, so a recreated
/// watcher finds the last known instances at once, and a Consul outage never empties it (static stability).
/// </para>
/// </summary>
public sealed partial class ConsulServiceWatcher : IAsyncDisposable, IDisposable
{
    private readonly ConcurrentDictionary<string, ConsulWatchedService> _services = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConsulClient _client;
    private readonly ILogger _logger;
    private int _disposed;

    /// <summary>Initializes a new instance.</summary>
    /// <param name="client">The Consul client to query with.</param>
    /// <param name="logger">Where watch starts and changes are logged.</param>
    public ConsulServiceWatcher(ConsulClient client, ILogger<ConsulServiceWatcher> logger)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(logger);
        _client = client;
        _logger = logger;
    }

    /// <summary>Gets the names of the services being watched.</summary>
    public IReadOnlyCollection<string> WatchedServices => [.. _services.Keys];

    /// <summary>
    /// Gets the watch of a service, starting it on first use. The same object is returned every time; it lives as long
    /// as this watcher, so hold on to it rather than looking it up per request.
    /// </summary>
    /// <param name="serviceName">The service name, for example <c>orders</c>.</param>
    /// <returns>The service's watch.</returns>
    /// <exception cref="ObjectDisposedException">The watcher has been disposed.</exception>
    public ConsulWatchedService Watch(string serviceName)
    {
        ArgumentException.ThrowIfNullOrEmpty(serviceName);
        if (_services.TryGetValue(serviceName, out var existing))
        {
            return existing;
        }

        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var added = _services.GetOrAdd(serviceName, static (name, self) => new ConsulWatchedService(name, self._client), this);
        if (added.TryStart(this))
        {
            LogWatching(_logger, serviceName);
        }

        return added;
    }

    /// <summary>Stops every watch and waits for the loops to end. The last known instances stay readable.</summary>
    /// <returns>Completes when every loop has ended.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        foreach (var service in _services.Values)
        {
            await service.Completion.ConfigureAwait(false);
        }

        _stopping.Dispose();
    }

    /// <summary>Stops every watch without waiting for the loops (for containers disposed synchronously).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stopping.Cancel();
    }

    internal async Task RunAsync(ConsulWatchedService service)
    {
        // Leave the caller's synchronous context before the first request.
        await Task.Yield();
        var token = _stopping.Token;
        try
        {
            await foreach (var result in service.Query.WatchAsync(token).ConfigureAwait(false))
            {
                var set = new ConsulServiceSet(service.ServiceName, result.Value, result.Index, result.ReceivedAt);
                LogChanged(_logger, service.ServiceName, set.Instances.Count, set.Index);
                service.Publish(set, _logger);
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
        catch (Exception ex) when (ex is ObjectDisposedException or InvalidOperationException)
        {
            // Consul errors never get here (the query retries them); this is the client disposed under the watch.
            LogWatchEnded(_logger, ex, service.ServiceName);
        }
    }

    [LoggerMessage(EventId = 4120, Level = LogLevel.Information, Message = "Watching the passing instances of {Service} in Consul.")]
    private static partial void LogWatching(ILogger logger, string service);

    [LoggerMessage(EventId = 4121, Level = LogLevel.Information, Message = "Consul service {Service} now has {Count} passing instance(s) (index {Index}).")]
    private static partial void LogChanged(ILogger logger, string service, int count, ulong index);

    [LoggerMessage(EventId = 4123, Level = LogLevel.Error, Message = "The Consul watch of {Service} ended; its last known instances are still served but no longer updated.")]
    private static partial void LogWatchEnded(ILogger logger, Exception exception, string service);

    [LoggerMessage(EventId = 4122, Level = LogLevel.Error, Message = "A change callback of Consul service {Service} threw; other callbacks still ran.")]
    internal static partial void LogCallbackFailed(ILogger logger, Exception exception, string service);
}
