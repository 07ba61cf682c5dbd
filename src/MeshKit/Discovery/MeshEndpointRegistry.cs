using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Net;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;
using Microsoft.Extensions.ServiceDiscovery;

namespace MeshKit.Discovery;

/// <summary>One endpoint of a destination, as discovery reported it.</summary>
internal sealed class MeshEndpoint(EndPoint endPoint, MeshEndpointMetadata metadata)
{
    public EndPoint EndPoint { get; } = endPoint;

    public MeshEndpointMetadata Metadata { get; } = metadata;

    /// <summary>Gets a stable key for per-endpoint state (address and port).</summary>
    public string Key { get; } = DiscoveredEndpoint.KeyOf(endPoint);

    /// <summary>Gets the IP address as text for the attempt span's <c>network.peer.address</c>, formatted once, not per attempt.</summary>
    public string? PeerAddress { get; } = (endPoint as IPEndPoint)?.Address.ToString();

    public override string ToString() => Key;
}

/// <summary>The endpoints of one destination at one moment; immutable, swapped whole when discovery changes.</summary>
internal sealed class EndpointSet(string destination, ImmutableArray<MeshEndpoint> endpoints, Exception? error)
{
    private readonly ConcurrentDictionary<(string Key, string Value), MeshEndpoint[]> _subsets = new();

    public string Destination { get; } = destination;

    public ImmutableArray<MeshEndpoint> Endpoints { get; } = endpoints;

    /// <summary>Gets the last discovery error, when the set is served from the last known endpoints or is empty because of it.</summary>
    public Exception? Error { get; } = error;

    /// <summary>Gets the endpoints whose metadata <paramref name="key"/> equals <paramref name="value"/>; computed once per set.</summary>
    public MeshEndpoint[] Subset(string key, string value)
    {
        if (_subsets.TryGetValue((key, value), out var cached))
        {
            return cached;
        }

        var list = new List<MeshEndpoint>();
        foreach (var endpoint in Endpoints)
        {
            if (string.Equals(endpoint.Metadata.Get(key), value, StringComparison.Ordinal))
            {
                list.Add(endpoint);
            }
        }

        return _subsets.GetOrAdd((key, value), list.ToArray());
    }

    /// <summary>Gets the distinct values of a metadata key, for error messages.</summary>
    public string DescribeSubsets(string key)
    {
        var values = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var endpoint in Endpoints)
        {
            values.Add(endpoint.Metadata.Get(key) ?? "(none)");
        }

        return values.Count == 0 ? "no endpoints at all" : $"endpoints have {key} = {string.Join(", ", values)}";
    }
}

/// <summary>
/// The endpoints of every destination this workload calls. For each destination it runs MeshKit's endpoint providers
/// (static, and Consul when configured; the same <c>IServiceEndpointProviderFactory</c> plug-ins Microsoft.Extensions.
/// ServiceDiscovery uses) and re-runs them when their change tokens fire. It owns that loop because the library's watcher
/// types are internal and its resolver disposes idle watchers; a failed refresh keeps the last known endpoints (static
/// stability). Reads on the request path are a dictionary lookup and a field load.
/// </summary>
internal sealed partial class MeshEndpointRegistry : IAsyncDisposable
{
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(2);
    private readonly IMeshServiceEndpointProviderFactory[] _factories;
    private readonly MeshDestinationNames _names;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _disposed = new();

    public MeshEndpointRegistry(IEnumerable<IMeshServiceEndpointProviderFactory> factories, MeshDestinationNames names, TimeProvider time, ILogger<MeshEndpointRegistry> logger)
    {
        _factories = [.. factories];
        _names = names;
        _time = time;
        _logger = logger;
    }

    /// <summary>Raised when endpoints leave a destination, so per-endpoint state can be evicted.</summary>
    public event Action<string, IReadOnlyCollection<string>>? EndpointsRemoved;

    /// <summary>Gets the current endpoints of a destination, resolving them the first time it is called.</summary>
    public ValueTask<EndpointSet> GetAsync(string destination, CancellationToken cancellationToken)
    {
        var entry = _entries.GetOrAdd(destination, static (name, self) => self.Start(name), this);
        var current = entry.Current;
        return current is not null ? ValueTask.FromResult(current) : new ValueTask<EndpointSet>(entry.First.Task.WaitAsync(cancellationToken));
    }

    /// <summary>Gets the destinations whose discovery last failed (whether or not last-known endpoints are served).</summary>
    public IReadOnlyList<string> Failing()
    {
        var failing = new List<string>();
        foreach (var (destination, entry) in _entries)
        {
            if (entry.Current?.Error is not null)
            {
                failing.Add(destination);
            }
        }

        return failing;
    }

    public async ValueTask DisposeAsync()
    {
        await _disposed.CancelAsync().ConfigureAwait(false);
        foreach (var entry in _entries.Values)
        {
            foreach (var provider in entry.Providers)
            {
                await provider.DisposeAsync().ConfigureAwait(false);
            }
        }

        _disposed.Dispose();
    }

    private Entry Start(string destination)
    {
        // The call path only asks for mesh names; this keeps any other way in shut (checked once per destination).
        if (!_names.TryParse(destination, out _, out _))
        {
            throw new ArgumentException($"'{destination}' is not a mesh destination, so it is not looked up in mesh discovery: {_names.Explain(destination)}.", nameof(destination));
        }

        var query = ServiceEndpointQuery.TryParse("https://" + destination, out var parsed)
            ? parsed
            : throw new ArgumentException($"'{destination}' is not a valid service name.", nameof(destination));
        var providers = new List<IServiceEndpointProvider>();
        foreach (var factory in _factories)
        {
            if (factory.TryCreateProvider(query, out var provider) && provider is not null)
            {
                providers.Add(provider);
            }
        }

        var entry = new Entry([.. providers]);
        _ = Task.Run(() => RefreshAsync(destination, entry), CancellationToken.None);
        return entry;
    }

    private async Task RefreshAsync(string destination, Entry entry)
    {
        if (_disposed.IsCancellationRequested || Interlocked.Exchange(ref entry.Refreshing, 1) == 1)
        {
            return;
        }

        var builder = new EndpointBuilder();
        Exception? error = null;
        try
        {
            foreach (var provider in entry.Providers)
            {
                try
                {
                    await provider.PopulateAsync(builder, _disposed.Token).ConfigureAwait(false);
                }
                catch (Exception ex) when (!_disposed.IsCancellationRequested)
                {
                    error = ex;
                }
            }
        }
        catch (OperationCanceledException)
        {
            return;
        }
        finally
        {
            Volatile.Write(ref entry.Refreshing, 0);
        }

        Update(destination, entry, builder.Endpoints, error, builder.Notes.Text);

        // Re-run when any provider says something changed; after an error, retry on a timer as well.
        var tokens = builder.ChangeTokens;
        if (error is not null)
        {
            tokens.Add(new CancellationChangeToken(new CancellationTokenSource(RetryDelay, _time).Token));
        }

        if (tokens.Count > 0)
        {
            new CompositeChangeToken(tokens).RegisterChangeCallback(static state =>
            {
                var (self, name, e) = ((MeshEndpointRegistry, string, Entry))state!;
                _ = Task.Run(() => self.RefreshAsync(name, e));
            }, (this, destination, entry));
        }
    }

    private void Update(string destination, Entry entry, IList<ServiceEndpoint>? endpoints, Exception? error, string? emptyReason)
    {
        var previous = entry.Current;
        if (error is not null && previous is not null && previous.Endpoints.Length > 0)
        {
            // Static stability: a failed refresh keeps serving what was last known.
            LogKeptLastKnown(_logger, destination, previous.Endpoints.Length, error.Message);
            entry.Current = new EndpointSet(destination, previous.Endpoints, error);
            return;
        }

        var builder = ImmutableArray.CreateBuilder<MeshEndpoint>(endpoints?.Count ?? 0);
        foreach (var endpoint in endpoints ?? [])
        {
            // Only address endpoints: a pass-through or URI endpoint from another provider is not a mesh endpoint.
            if (endpoint.EndPoint is IPEndPoint or DnsEndPoint)
            {
                var metadata = endpoint.Features.Get<IMeshEndpointMetadataFeature>()?.Metadata ?? MeshEndpointMetadata.Empty;
                builder.Add(new MeshEndpoint(endpoint.EndPoint, metadata));
            }
        }

        // A provider's answer of "none" (Consul has no passing instance) is not a failure: no last-known fallback, but
        // the empty set carries why, so the no_endpoints error can say it.
        if (error is null && builder.Count == 0 && emptyReason is not null)
        {
            error = new MeshDiscoveryException(emptyReason);
        }

        var next = new EndpointSet(destination, builder.ToImmutable(), error);
        entry.Current = next;
        entry.First.TrySetResult(next);
        LogUpdated(_logger, destination, next.Endpoints.Length);

        if (previous is not null)
        {
            var removed = new HashSet<string>(StringComparer.Ordinal);
            foreach (var endpoint in previous.Endpoints)
            {
                removed.Add(endpoint.Key);
            }

            foreach (var endpoint in next.Endpoints)
            {
                removed.Remove(endpoint.Key);
            }

            if (removed.Count > 0)
            {
                EndpointsRemoved?.Invoke(destination, removed);
            }
        }
    }

    /// <summary>Collects what the providers report.</summary>
    private sealed class EndpointBuilder : IServiceEndpointBuilder
    {
        public EndpointBuilder() => Features.Set(Notes);

        public IList<ServiceEndpoint> Endpoints { get; } = new List<ServiceEndpoint>();

        public IFeatureCollection Features { get; } = new FeatureCollection();

        public DiscoveryNotes Notes { get; } = new();

        public List<IChangeToken> ChangeTokens { get; } = [];

        public void AddChangeToken(IChangeToken changeToken) => ChangeTokens.Add(changeToken);
    }

    [LoggerMessage(EventId = 3001, Level = LogLevel.Debug, Message = "Discovery for {Destination}: {Count} endpoint(s).")]
    private static partial void LogUpdated(ILogger logger, string destination, int count);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Warning, Message = "Discovery for {Destination} failed; serving the {Count} last known endpoint(s): {Error}")]
    private static partial void LogKeptLastKnown(ILogger logger, string destination, int count, string error);

    private sealed class Entry(IServiceEndpointProvider[] providers)
    {
        public IServiceEndpointProvider[] Providers { get; } = providers;

        public int Refreshing;

        public TaskCompletionSource<EndpointSet> First { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public volatile EndpointSet? Current;
    }
}

/// <summary>
/// Why a MeshKit provider found no endpoint when that is the answer rather than a failure ("Consul has no passing
/// instance of service 'orders'"). The registry puts one on each refresh's builder features; providers used by
/// Microsoft.Extensions.ServiceDiscovery directly find none there and just log.
/// </summary>
internal sealed class DiscoveryNotes
{
    private List<string>? _notes;

    /// <summary>Gets the notes joined, or <see langword="null"/> when there are none.</summary>
    public string? Text => _notes is null ? null : string.Join(" ", _notes);

    public void Add(string note) => (_notes ??= []).Add(note);
}
