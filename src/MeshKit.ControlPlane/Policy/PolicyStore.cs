using System.Collections.Immutable;
using System.Globalization;
using System.Text.Json;
using MeshKit.Consul;
using MeshKit.ControlPlane.Storage;

namespace MeshKit.ControlPlane.Policy;

/// <summary>A write lost a race: the document changed since the version the writer read.</summary>
internal sealed class PolicyConflictException(string message) : Exception(message);

/// <summary>The store could not be read or written (Consul is unreachable); nothing was changed.</summary>
internal sealed class PolicyStoreUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A deletion made through the admin API: workloads drop the document only on seeing one newer than theirs.</summary>
/// <param name="Service">The service key.</param>
/// <param name="Revision">The store revision of the deletion, above the deleted document's.</param>
internal sealed record PolicyTombstone(string Service, ulong Revision);

/// <summary>
/// Where central policy lives. Reads are served from an in-memory copy kept current by the store, so a watch answer never
/// waits on disk or Consul; <see cref="Changed"/> fires when any document changes, from this replica or another.
/// A store tells "no document" apart from "not loaded yet" (<see cref="IsLoaded"/>), and keeps deletions as tombstones
/// with a revision, so a workload never drops its central policy because a replica could not read the store.
/// </summary>
internal abstract class PolicyStore : IAsyncDisposable
{
    private volatile Contents _contents = new(
        ImmutableDictionary.Create<string, StoredPolicy>(StringComparer.Ordinal),
        ImmutableDictionary.Create<string, PolicyTombstone>(StringComparer.Ordinal));

    private volatile bool _loaded;

    /// <summary>Raised after a document was added, changed or deleted, or when the store first loaded.</summary>
    public event Action? Changed;

    /// <summary>Gets whether the store has been read at least once; until then it knows nothing, not "no documents".</summary>
    public bool IsLoaded => _loaded;

    /// <summary>Gets the documents, by service key (deleted ones are not listed).</summary>
    public IReadOnlyDictionary<string, StoredPolicy> Documents => _contents.Documents;

    /// <summary>Gets a service's document, or <see langword="null"/>.</summary>
    public StoredPolicy? Get(string service) => _contents.Documents.TryGetValue(service, out var document) ? document : null;

    /// <summary>Gets the deletion of a service's document that is newer than any document, or <see langword="null"/>.</summary>
    public PolicyTombstone? GetTombstone(string service) => _contents.Tombstones.TryGetValue(service, out var tombstone) ? tombstone : null;

    /// <summary>Stores a validated document; when <paramref name="expectedVersion"/> is given, only if the current version is that one.</summary>
    public abstract Task<StoredPolicy> PutAsync(string service, string json, string version, string? expectedVersion, CancellationToken cancellationToken);

    /// <summary>Deletes a service's document, leaving a tombstone; <see langword="null"/> when there was no document.</summary>
    public abstract Task<PolicyTombstone?> DeleteAsync(string service, CancellationToken cancellationToken);

    /// <summary>Starts keeping the in-memory copy current.</summary>
    public abstract Task StartAsync(CancellationToken cancellationToken);

    public virtual ValueTask DisposeAsync() => ValueTask.CompletedTask;

    protected ImmutableDictionary<string, StoredPolicy> Snapshot => _contents.Documents;

    protected ImmutableDictionary<string, PolicyTombstone> Tombstones => _contents.Tombstones;

    /// <summary>Replaces the contents and marks the store loaded; raises <see cref="Changed"/> when anything moved.</summary>
    protected void Replace(ImmutableDictionary<string, StoredPolicy> documents, ImmutableDictionary<string, PolicyTombstone> tombstones)
    {
        var before = _contents;
        var wasLoaded = _loaded;
        _contents = new Contents(documents, tombstones);
        _loaded = true;
        if (!wasLoaded || !SameRevisions(before, _contents))
        {
            Changed?.Invoke();
        }
    }

    protected static void CheckExpected(StoredPolicy? current, string? expectedVersion, string service)
    {
        if (expectedVersion is not null && (current?.Version ?? "none") != expectedVersion)
        {
            throw new PolicyConflictException($"The policy of '{service}' is at version {current?.Version ?? "none"}, not {expectedVersion}; read it again and reapply your change.");
        }
    }

    private static bool SameRevisions(Contents a, Contents b)
    {
        if (a.Documents.Count != b.Documents.Count || a.Tombstones.Count != b.Tombstones.Count)
        {
            return false;
        }

        foreach (var (key, value) in a.Documents)
        {
            if (!b.Documents.TryGetValue(key, out var other) || other.Version != value.Version || other.Revision != value.Revision)
            {
                return false;
            }
        }

        foreach (var (key, value) in a.Tombstones)
        {
            if (!b.Tombstones.TryGetValue(key, out var other) || other.Revision != value.Revision)
            {
                return false;
            }
        }

        return true;
    }

    private sealed record Contents(ImmutableDictionary<string, StoredPolicy> Documents, ImmutableDictionary<string, PolicyTombstone> Tombstones);
}

/// <summary>
/// A folder of <c>&lt;service&gt;.json</c> files; edits to the folder from outside are picked up too. A document's revision
/// is its file's write time in milliseconds; a deletion through the API leaves <c>deleted/&lt;service&gt;</c> holding its
/// revision. A file removed by hand is "no document" (workloads keep theirs), not a deletion.
/// </summary>
internal sealed partial class DirectoryPolicyStore : PolicyStore
{
    private readonly string _directory;
    private readonly string _tombstones;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private FileSystemWatcher? _watcher;

    public DirectoryPolicyStore(string directory, TimeProvider time, ILogger<DirectoryPolicyStore> logger)
    {
        _directory = Path.GetFullPath(directory);
        _tombstones = Path.Combine(_directory, "deleted");
        _time = time;
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
            var revision = NextRevision(service);
            var path = PathOf(service);
            SecureFile.WritePublicText(path, json);

            // The write time is the revision: set it exactly, so a restart reads back the same number.
            File.SetLastWriteTimeUtc(path, DateTime.UnixEpoch.AddMilliseconds(revision));
            if (File.Exists(TombstonePath(service)))
            {
                File.Delete(TombstonePath(service));
            }

            var stored = new StoredPolicy(service, json, version, revision);
            Replace(Snapshot.SetItem(service, stored), Tombstones.Remove(service));
            return Task.FromResult(stored);
        }
    }

    public override Task<PolicyTombstone?> DeleteAsync(string service, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var path = PathOf(service);
            if (!File.Exists(path))
            {
                return Task.FromResult<PolicyTombstone?>(null);
            }

            // The tombstone first: a crash between the two leaves a deletion, never a document that silently vanished.
            var tombstone = new PolicyTombstone(service, NextRevision(service));
            SecureFile.EnsureDirectory(_tombstones);
            SecureFile.WritePublicText(TombstonePath(service), tombstone.Revision.ToString(CultureInfo.InvariantCulture));
            File.Delete(path);
            Replace(Snapshot.Remove(service), Tombstones.SetItem(service, tombstone));
            return Task.FromResult<PolicyTombstone?>(tombstone);
        }
    }

    public override ValueTask DisposeAsync()
    {
        _watcher?.Dispose();
        return ValueTask.CompletedTask;
    }

    private string PathOf(string service) => Path.Combine(_directory, service + ".json");

    private string TombstonePath(string service) => Path.Combine(_tombstones, service);

    /// <summary>A revision above every one this service had: the clock in milliseconds, or one more when the clock is behind.</summary>
    private ulong NextRevision(string service)
    {
        var now = (ulong)Math.Max(0, _time.GetUtcNow().ToUnixTimeMilliseconds());
        var previous = Math.Max(Get(service)?.Revision ?? 0, GetTombstone(service)?.Revision ?? 0);
        return Math.Max(now, previous + 1);
    }

    private void Reload()
    {
        lock (_gate)
        {
            var documents = Snapshot;
            var tombstones = ReadTombstones();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var file in Directory.EnumerateFiles(_directory, "*.json"))
            {
                var service = Path.GetFileNameWithoutExtension(file);
                if (!PolicyDocument.IsServiceKey(service))
                {
                    continue;
                }

                string json;
                ulong revision;
                try
                {
                    json = File.ReadAllText(file);
                    revision = (ulong)Math.Max(0, new DateTimeOffset(File.GetLastWriteTimeUtc(file), TimeSpan.Zero).ToUnixTimeMilliseconds());
                }
                catch (IOException)
                {
                    // Being written right now; the watcher fires again when it is done.
                    if (documents.ContainsKey(service))
                    {
                        seen.Add(service);
                    }

                    continue;
                }

                if (tombstones.TryGetValue(service, out var tombstone))
                {
                    if (revision <= tombstone.Revision)
                    {
                        // Deleted through the API after this file was written (a restored copy keeps its old time).
                        LogShadowedFile(_logger, file, tombstone.Revision);
                        continue;
                    }

                    tombstones = tombstones.Remove(service);
                }

                seen.Add(service);
                var result = PolicyDocument.Validate(json);
                if (!result.IsValid)
                {
                    // A bad edit on disk never replaces a good document.
                    LogInvalidFile(_logger, file, string.Join("; ", result.Errors));
                    continue;
                }

                if (!documents.TryGetValue(service, out var current) || current.Version != result.Snapshot!.Version || current.Revision != revision)
                {
                    documents = documents.SetItem(service, new StoredPolicy(service, json, result.Snapshot!.Version, revision));
                }
            }

            foreach (var service in documents.Keys)
            {
                if (!seen.Contains(service))
                {
                    documents = documents.Remove(service);
                    if (!tombstones.ContainsKey(service))
                    {
                        LogFileVanished(_logger, PathOf(service), service);
                    }
                }
            }

            Replace(documents, tombstones);
        }
    }

    private ImmutableDictionary<string, PolicyTombstone> ReadTombstones()
    {
        var tombstones = ImmutableDictionary.Create<string, PolicyTombstone>(StringComparer.Ordinal);
        if (!Directory.Exists(_tombstones))
        {
            return tombstones;
        }

        foreach (var file in Directory.EnumerateFiles(_tombstones))
        {
            var service = Path.GetFileName(file);
            if (PolicyDocument.IsServiceKey(service)
                && ulong.TryParse(File.ReadAllText(file).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var revision))
            {
                tombstones = tombstones.SetItem(service, new PolicyTombstone(service, revision));
            }
        }

        return tombstones;
    }

    [LoggerMessage(EventId = 1101, Level = LogLevel.Error, Message = "The policy file {File} is not valid and was not loaded; the last good version stays: {Errors}")]
    private static partial void LogInvalidFile(ILogger logger, string file, string errors);

    [LoggerMessage(EventId = 1104, Level = LogLevel.Warning, Message = "The policy file {File} vanished. Workloads of '{Service}' keep the central policy they hold; to remove it from them, DELETE /v1/policy/{Service}.")]
    private static partial void LogFileVanished(ILogger logger, string file, string service);

    [LoggerMessage(EventId = 1105, Level = LogLevel.Warning, Message = "The policy file {File} is older than its deletion (revision {Revision}) and was not loaded; PUT it through the API to restore it.")]
    private static partial void LogShadowedFile(ILogger logger, string file, ulong revision);
}

/// <summary>
/// Consul KV under a prefix, shared by every control-service replica: writes use check-and-set on the key's ModifyIndex,
/// and a blocking query on the prefix keeps each replica's copy current. A deletion through the API writes a tombstone
/// over the key (its ModifyIndex is the deletion's revision), so replicas and workloads see a deletion, not a gap. Until
/// the first answer from Consul the store is not loaded, and watches answer "unknown".
/// </summary>
internal sealed partial class ConsulPolicyStore : PolicyStore
{
    /// <summary>The marker property of a tombstone; a policy document never validates with it.</summary>
    internal const string TombstoneProperty = "meshkit.deleted";

    private readonly ConsulClient _consul;
    private readonly string _prefix;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stopping = new();
    private Task? _loop;

    public ConsulPolicyStore(ConsulClient consul, string prefix, TimeProvider time, ILoggerFactory loggerFactory)
    {
        _consul = consul;
        _prefix = prefix;
        _time = time;
        _logger = loggerFactory.CreateLogger<ConsulPolicyStore>();
    }

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        // The blocking query's first answer loads the store; until then watches answer "unknown", never "no policy".
        _loop = Task.Run(() => WatchAsync(_stopping.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    public override async Task<StoredPolicy> PutAsync(string service, string json, string version, string? expectedVersion, CancellationToken cancellationToken)
    {
        var key = _prefix + service;
        var current = await ReadAsync(key, cancellationToken).ConfigureAwait(false);
        var currentDocument = current is null ? null : Parse(service, current) as StoredPolicy;
        CheckExpected(currentDocument, expectedVersion, service);

        // CAS on the index we read (a tombstone's too): 0 means "only if absent". A concurrent writer makes this fail
        // rather than be overwritten.
        if (!await WriteAsync(key, json, current?.ModifyIndex ?? 0, cancellationToken).ConfigureAwait(false))
        {
            throw new PolicyConflictException($"The policy of '{service}' was changed by another writer at the same time; read it again and reapply your change.");
        }

        var written = await ReadAsync(key, cancellationToken).ConfigureAwait(false);
        var stored = new StoredPolicy(service, json, version, written?.ModifyIndex ?? 0);
        Replace(Snapshot.SetItem(service, stored), Tombstones.Remove(service));
        return stored;
    }

    public override async Task<PolicyTombstone?> DeleteAsync(string service, CancellationToken cancellationToken)
    {
        var key = _prefix + service;
        var current = await ReadAsync(key, cancellationToken).ConfigureAwait(false);
        if (current is null || IsTombstone(current))
        {
            return null;
        }

        var marker = JsonSerializer.Serialize(new Dictionary<string, object> { [TombstoneProperty] = new { at = _time.GetUtcNow() } });
        if (!await WriteAsync(key, marker, current.ModifyIndex, cancellationToken).ConfigureAwait(false))
        {
            throw new PolicyConflictException($"The policy of '{service}' was changed by another writer at the same time; read it again and delete again.");
        }

        var written = await ReadAsync(key, cancellationToken).ConfigureAwait(false);
        var tombstone = new PolicyTombstone(service, written?.ModifyIndex ?? current.ModifyIndex + 1);
        Replace(Snapshot.Remove(service), Tombstones.SetItem(service, tombstone));
        return tombstone;
    }

    public override async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        _stopping.Dispose();
    }

    private async Task<ConsulKeyValue?> ReadAsync(string key, CancellationToken cancellationToken)
    {
        try
        {
            return (await _consul.GetKeyAsync(key, cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
        }
        catch (ConsulException ex)
        {
            throw new PolicyStoreUnavailableException($"Consul KV at {_consul.Address} could not be read ({ex.Message}); nothing was changed.", ex);
        }
    }

    private async Task<bool> WriteAsync(string key, string value, ulong cas, CancellationToken cancellationToken)
    {
        try
        {
            return await _consul.PutKeyAsync(key, value, cas, cancellationToken).ConfigureAwait(false);
        }
        catch (ConsulException ex)
        {
            throw new PolicyStoreUnavailableException($"Consul KV at {_consul.Address} could not be written ({ex.Message}); nothing was changed.", ex);
        }
    }

    private async Task WatchAsync(CancellationToken cancellationToken)
    {
        var query = _consul.CreateKeyValueQuery(_prefix, recurse: true);
        try
        {
            var first = true;
            await foreach (var result in query.WatchAsync(cancellationToken).ConfigureAwait(false))
            {
                Apply(result.Value);
                if (first)
                {
                    first = false;
                    LogLoaded(_logger, _consul.Address.ToString(), Snapshot.Count);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private void Apply(IReadOnlyList<ConsulKeyValue> entries)
    {
        var documents = Snapshot;
        var tombstones = Tombstones;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            var service = entry.Key[_prefix.Length..];
            if (!PolicyDocument.IsServiceKey(service))
            {
                continue;
            }

            seen.Add(service);
            switch (Parse(service, entry))
            {
                case StoredPolicy document:
                    documents = documents.SetItem(service, document);
                    tombstones = tombstones.Remove(service);
                    break;
                case PolicyTombstone tombstone:
                    documents = documents.Remove(service);
                    tombstones = tombstones.SetItem(service, tombstone);
                    break;
            }
        }

        foreach (var service in documents.Keys)
        {
            if (!seen.Contains(service))
            {
                // Removed around the API (a `consul kv delete`): no document, but not a deletion workloads act on.
                documents = documents.Remove(service);
                LogKeyVanished(_logger, _prefix + service, service);
            }
        }

        foreach (var service in tombstones.Keys)
        {
            if (!seen.Contains(service))
            {
                tombstones = tombstones.Remove(service);
            }
        }

        Replace(documents, tombstones);
    }

    private static bool IsTombstone(ConsulKeyValue entry)
    {
        try
        {
            using var document = JsonDocument.Parse(entry.Value);
            return document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty(TombstoneProperty, out _);
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>A document, a tombstone, or (for a value that is neither) the last good document of this service.</summary>
    private object? Parse(string service, ConsulKeyValue entry)
    {
        if (IsTombstone(entry))
        {
            return new PolicyTombstone(service, entry.ModifyIndex);
        }

        var json = entry.GetValueAsString();
        var result = PolicyDocument.Validate(json);
        if (!result.IsValid)
        {
            // Someone wrote around the API; keep the last good document of this service.
            LogInvalidKey(_logger, entry.Key, string.Join("; ", result.Errors));
            return (object?)Get(service) ?? GetTombstone(service);
        }

        return new StoredPolicy(service, json, result.Snapshot!.Version, entry.ModifyIndex);
    }

    [LoggerMessage(EventId = 1102, Level = LogLevel.Error, Message = "The policy at Consul key {Key} is not valid and was not loaded; the last good version stays: {Errors}")]
    private static partial void LogInvalidKey(ILogger logger, string key, string errors);

    [LoggerMessage(EventId = 1103, Level = LogLevel.Information, Message = "Central policy loaded from Consul at {Address}: {Count} document(s). Until this point watches answered 'unknown'.")]
    private static partial void LogLoaded(ILogger logger, string address, int count);

    [LoggerMessage(EventId = 1106, Level = LogLevel.Warning, Message = "The policy key {Key} vanished from Consul. Workloads of '{Service}' keep the central policy they hold; to remove it from them, DELETE /v1/policy/{Service}.")]
    private static partial void LogKeyVanished(ILogger logger, string key, string service);
}
