using System.Collections.Immutable;
using MeshKit.Consul;
using MeshKit.ControlPlane.Storage;
using Microsoft.Extensions.Options;

namespace MeshKit.ControlPlane.Policy;

/// <summary>A write lost a race: the document changed since the version the writer read.</summary>
internal sealed class PolicyConflictException(string message) : Exception(message);

/// <summary>
/// Where central policy lives. Reads are served from an in-memory copy kept current by the store, so a watch answer never
/// waits on disk or Consul; <see cref="Changed"/> fires when any document changes, from this replica or another.
/// </summary>
internal abstract class PolicyStore : IAsyncDisposable
{
    private volatile ImmutableDictionary<string, StoredPolicy> _documents = ImmutableDictionary.Create<string, StoredPolicy>(StringComparer.Ordinal);

    /// <summary>Raised after a document was added, changed or removed.</summary>
    public event Action? Changed;

    /// <summary>Gets the documents, by service key.</summary>
    public IReadOnlyDictionary<string, StoredPolicy> Documents => _documents;

    /// <summary>Gets a service's document, or <see langword="null"/>.</summary>
    public StoredPolicy? Get(string service) => _documents.TryGetValue(service, out var document) ? document : null;

    /// <summary>Stores a validated document; when <paramref name="expectedVersion"/> is given, only if the current version is that one.</summary>
    public abstract Task<StoredPolicy> PutAsync(string service, string json, string version, string? expectedVersion, CancellationToken cancellationToken);

    /// <summary>Removes a service's document.</summary>
    public abstract Task<bool> DeleteAsync(string service, CancellationToken cancellationToken);

    /// <summary>Starts keeping the in-memory copy current.</summary>
    public abstract Task StartAsync(CancellationToken cancellationToken);

    public virtual ValueTask DisposeAsync() => ValueTask.CompletedTask;

    protected void Replace(ImmutableDictionary<string, StoredPolicy> documents)
    {
        var before = _documents;
        _documents = documents;
        if (!ReferenceEquals(before, documents) && !SameVersions(before, documents))
        {
            Changed?.Invoke();
        }
    }

    protected ImmutableDictionary<string, StoredPolicy> Snapshot => _documents;

    protected static void CheckExpected(StoredPolicy? current, string? expectedVersion, string service)
    {
        if (expectedVersion is not null && (current?.Version ?? "none") != expectedVersion)
        {
            throw new PolicyConflictException($"The policy of '{service}' is at version {current?.Version ?? "none"}, not {expectedVersion}; read it again and reapply your change.");
        }
    }

    private static bool SameVersions(ImmutableDictionary<string, StoredPolicy> a, ImmutableDictionary<string, StoredPolicy> b)
    {
        if (a.Count != b.Count)
        {
            return false;
        }

        foreach (var (key, value) in a)
        {
            if (!b.TryGetValue(key, out var other) || other.Version != value.Version)
            {
                return false;
            }
        }

        return true;
    }
}

/// <summary>A folder of <c>&lt;service&gt;.json</c> files; edits to the folder from outside are picked up too.</summary>
internal sealed partial class DirectoryPolicyStore : PolicyStore
{
    private readonly string _directory;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private FileSystemWatcher? _watcher;

    public DirectoryPolicyStore(string directory, ILogger<DirectoryPolicyStore> logger)
    {
        _directory = Path.GetFullPath(directory);
        _logger = logger;
    }

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        SecureFile.EnsureDirectory(_directory);
        Reload();
        _watcher = new FileSystemWatcher(_directory, "*.json") { IncludeSubdirectories = false, EnableRaisingEvents = true };
        _watcher.Changed += (_, _) => Reload();
        _watcher.Created += (_, _) => Reload();
        _watcher.Deleted += (_, _) => Reload();
        _watcher.Renamed += (_, _) => Reload();
        return Task.CompletedTask;
    }

    public override Task<StoredPolicy> PutAsync(string service, string json, string version, string? expectedVersion, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            CheckExpected(Get(service), expectedVersion, service);
            SecureFile.WritePublicText(PathOf(service), json);
            var stored = new StoredPolicy(service, json, version, 0);
            Replace(Snapshot.SetItem(service, stored));
            return Task.FromResult(stored);
        }
    }

    public override Task<bool> DeleteAsync(string service, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var path = PathOf(service);
            if (!File.Exists(path))
            {
                return Task.FromResult(false);
            }

            File.Delete(path);
            Replace(Snapshot.Remove(service));
            return Task.FromResult(true);
        }
    }

    public override ValueTask DisposeAsync()
    {
        _watcher?.Dispose();
        return ValueTask.CompletedTask;
    }

    private string PathOf(string service) => Path.Combine(_directory, service + ".json");

    private void Reload()
    {
        lock (_gate)
        {
            var documents = Snapshot;
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var file in Directory.EnumerateFiles(_directory, "*.json"))
            {
                var service = Path.GetFileNameWithoutExtension(file);
                if (!PolicyDocument.IsServiceKey(service))
                {
                    continue;
                }

                seen.Add(service);
                string json;
                try
                {
                    json = File.ReadAllText(file);
                }
                catch (IOException)
                {
                    // Being written right now; the watcher fires again when it is done.
                    continue;
                }

                var result = PolicyDocument.Validate(json);
                if (!result.IsValid)
                {
                    // A bad edit on disk never replaces a good document.
                    LogInvalidFile(_logger, file, string.Join("; ", result.Errors));
                    continue;
                }

                if (!documents.TryGetValue(service, out var current) || current.Version != result.Snapshot!.Version)
                {
                    documents = documents.SetItem(service, new StoredPolicy(service, json, result.Snapshot!.Version, 0));
                }
            }

            foreach (var service in documents.Keys)
            {
                if (!seen.Contains(service))
                {
                    documents = documents.Remove(service);
                }
            }

            Replace(documents);
        }
    }

    [LoggerMessage(EventId = 1101, Level = LogLevel.Error, Message = "The policy file {File} is not valid and was not loaded; the last good version stays: {Errors}")]
    private static partial void LogInvalidFile(ILogger logger, string file, string errors);
}

/// <summary>
/// Consul KV under a prefix, shared by every control-service replica: writes use check-and-set on the key's ModifyIndex,
/// and a blocking query on the prefix keeps each replica's copy current.
/// </summary>
internal sealed partial class ConsulPolicyStore : PolicyStore
{
    private readonly ConsulClient _consul;
    private readonly string _prefix;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private Task? _loop;

    public ConsulPolicyStore(CentralPolicyConsulOptions options, ILoggerFactory loggerFactory)
    {
        _prefix = options.KeyPrefix.EndsWith('/') ? options.KeyPrefix : options.KeyPrefix + "/";
        _logger = loggerFactory.CreateLogger<ConsulPolicyStore>();
        _consul = new ConsulClient(
            Options.Create(new ConsulOptions { Address = options.Address!, Token = options.Token, Datacenter = options.Datacenter, Wait = options.Wait }),
            loggerFactory);
    }

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        // Load once before serving, then follow changes with a blocking query.
        try
        {
            var first = await _consul.ListKeysAsync(_prefix, cancellationToken: cancellationToken).ConfigureAwait(false);
            Apply(first.Value);
        }
        catch (ConsulException ex)
        {
            LogUnavailable(_logger, ex.Message);
        }

        _loop = Task.Run(() => WatchAsync(_stopping.Token), CancellationToken.None);
    }

    public override async Task<StoredPolicy> PutAsync(string service, string json, string version, string? expectedVersion, CancellationToken cancellationToken)
    {
        var key = _prefix + service;
        var current = await _consul.GetKeyAsync(key, cancellationToken: cancellationToken).ConfigureAwait(false);
        var currentDocument = current.Value is { } kv ? Parse(service, kv) : null;
        CheckExpected(currentDocument, expectedVersion, service);

        // CAS on the index we read: 0 means "only if absent". A concurrent writer makes this fail rather than be overwritten.
        var cas = current.Value?.ModifyIndex ?? 0;
        if (!await _consul.PutKeyAsync(key, json, cas, cancellationToken).ConfigureAwait(false))
        {
            throw new PolicyConflictException($"The policy of '{service}' was changed by another writer at the same time; read it again and reapply your change.");
        }

        var written = await _consul.GetKeyAsync(key, cancellationToken: cancellationToken).ConfigureAwait(false);
        var stored = new StoredPolicy(service, json, version, written.Value?.ModifyIndex ?? 0);
        Replace(Snapshot.SetItem(service, stored));
        return stored;
    }

    public override async Task<bool> DeleteAsync(string service, CancellationToken cancellationToken)
    {
        var key = _prefix + service;
        var current = await _consul.GetKeyAsync(key, cancellationToken: cancellationToken).ConfigureAwait(false);
        if (current.Value is null)
        {
            return false;
        }

        var deleted = await _consul.DeleteKeyAsync(key, current.Value.ModifyIndex, cancellationToken).ConfigureAwait(false);
        if (deleted)
        {
            Replace(Snapshot.Remove(service));
        }

        return deleted;
    }

    public override async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        _consul.Dispose();
        _stopping.Dispose();
    }

    private async Task WatchAsync(CancellationToken cancellationToken)
    {
        var query = _consul.CreateKeyValueQuery(_prefix, recurse: true);
        try
        {
            await foreach (var result in query.WatchAsync(cancellationToken).ConfigureAwait(false))
            {
                Apply(result.Value);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private void Apply(IReadOnlyList<ConsulKeyValue> entries)
    {
        var documents = Snapshot;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            var service = entry.Key[_prefix.Length..];
            if (!PolicyDocument.IsServiceKey(service))
            {
                continue;
            }

            seen.Add(service);
            var parsed = Parse(service, entry);
            if (parsed is null)
            {
                continue;
            }

            documents = documents.SetItem(service, parsed);
        }

        foreach (var service in documents.Keys)
        {
            if (!seen.Contains(service))
            {
                documents = documents.Remove(service);
            }
        }

        Replace(documents);
    }

    private StoredPolicy? Parse(string service, ConsulKeyValue entry)
    {
        var json = entry.GetValueAsString();
        var result = PolicyDocument.Validate(json);
        if (!result.IsValid)
        {
            // Someone wrote around the API; keep the last good document of this service.
            LogInvalidKey(_logger, entry.Key, string.Join("; ", result.Errors));
            return Get(service);
        }

        return new StoredPolicy(service, json, result.Snapshot!.Version, entry.ModifyIndex);
    }

    [LoggerMessage(EventId = 1102, Level = LogLevel.Error, Message = "The policy at Consul key {Key} is not valid and was not loaded; the last good version stays: {Errors}")]
    private static partial void LogInvalidKey(ILogger logger, string key, string errors);

    [LoggerMessage(EventId = 1103, Level = LogLevel.Warning, Message = "Consul is not reachable for central policy yet; serving what is known and retrying: {Error}")]
    private static partial void LogUnavailable(ILogger logger, string error);
}
