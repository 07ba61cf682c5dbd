using System.Collections.Immutable;
using System.Text.Json;
using MeshKit.Consul;

namespace MeshKit.ControlPlane.Storage;

/// <summary>The shared store could not be read or written; nothing was changed.</summary>
internal sealed class RevocationStoreUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// A list of revocations (what is revoked → why), kept where every replica reads it: one Consul KV key written with
/// check-and-set and followed with a blocking query when the control service shares state, else a file in the data
/// directory. With Consul, the file is this replica's last-known copy: a replica that starts while Consul is down keeps
/// what it knew, and one that never knew anything says so (<see cref="IsKnown"/>) so that signing can refuse.
/// Revocations never silently disappear: a key that vanishes from Consul is written back from what is known; only the
/// admin API removes an entry.
/// With Consul, the list is also bounded in age (<c>ControlPlane:Consul:RevocationsMaxStaleness</c>): a replica that has not
/// heard from Consul for that long may be missing a revocation made through another replica, so <see cref="IsCurrent"/>
/// turns false and signing refuses until Consul answers again.
/// </summary>
internal sealed partial class RevocationList : IAsyncDisposable
{
    private static readonly ImmutableDictionary<string, string> Empty = ImmutableDictionary.Create<string, string>(StringComparer.Ordinal);
    private readonly string _what;
    private readonly string _cachePath;
    private readonly ConsulClient? _consul;
    private readonly string _key;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly bool _hadCache;
    private readonly TimeSpan _maxStaleness;
    private readonly TimeProvider _time;
    private long _confirmedTicks;
    private ConsulBlockingQuery<IReadOnlyList<ConsulKeyValue>>? _query;
    private volatile ImmutableDictionary<string, string> _entries;
    private volatile string[] _keys;
    private volatile bool _readFromStore;
    private Task? _loop;
    private Task? _freshness;

    /// <param name="what">What is revoked, for messages: <c>identity</c> or <c>token</c>.</param>
    /// <param name="cachePath">The file in the data directory: the list itself, or the last-known copy of Consul's.</param>
    /// <param name="shared">The shared store, if any.</param>
    /// <param name="key">The Consul key of the list.</param>
    /// <param name="logger">The logger.</param>
    public RevocationList(string what, string cachePath, SharedConsul shared, string key, ILogger logger)
    {
        _what = what;
        _cachePath = cachePath;
        _consul = shared.Client;
        _key = key;
        _logger = logger;
        _hadCache = File.Exists(cachePath);
        _entries = _hadCache ? ReadCache(cachePath, what) : Empty;
        _keys = [.. _entries.Keys];
        _maxStaleness = shared.RevocationsMaxStaleness;

        // The Consul client answers on the system clock (its answers' times are compared with this one).
        _time = TimeProvider.System;

        // A copy from an earlier run was current when it was last confirmed: the file's time is touched on each confirmation.
        _confirmedTicks = _hadCache ? new DateTimeOffset(File.GetLastWriteTimeUtc(cachePath), TimeSpan.Zero).UtcTicks : 0;
    }

    /// <summary>Raised after the list changed, on this replica or another.</summary>
    public event Action? Changed;

    /// <summary>Gets the revocations: what is revoked, and why.</summary>
    public IReadOnlyDictionary<string, string> Entries => _entries;

    /// <summary>Gets what is revoked, as a list made once per change (watch answers carry it).</summary>
    public IReadOnlyList<string> Keys => _keys;

    /// <summary>
    /// Gets whether this replica knows the list: it has no shared store, it has read the shared one, or it kept a copy from
    /// an earlier run. A replica that knows nothing must not issue certificates.
    /// </summary>
    public bool IsKnown => _consul is null || _readFromStore || _hadCache;

    /// <summary>
    /// Gets when this replica last knew the list to be Consul's (an answer of its blocking query, a write, or the copy's
    /// time at start); <see langword="null"/> without a shared store or before any.
    /// </summary>
    public DateTimeOffset? ConfirmedAt
    {
        get
        {
            if (_consul is null)
            {
                return null;
            }

            var ticks = Math.Max(Interlocked.Read(ref _confirmedTicks), _query?.LastSuccessAt?.UtcTicks ?? 0);
            return ticks == 0 ? null : new DateTimeOffset(ticks, TimeSpan.Zero);
        }
    }

    /// <summary>
    /// Gets whether the list is recent enough to issue by: no shared store, or confirmed with Consul within
    /// <c>ControlPlane:Consul:RevocationsMaxStaleness</c>. Past it, a revocation made through another replica may be missing.
    /// </summary>
    public bool IsCurrent => _consul is null || (ConfirmedAt is { } at && _time.GetUtcNow() - at <= _maxStaleness);

    /// <summary>Gets the longest this replica issues by a list it has not confirmed with Consul.</summary>
    public TimeSpan MaxStaleness => _maxStaleness;

    /// <summary>Gets where the list is kept, for messages.</summary>
    public string Location => _consul is null ? _cachePath : $"Consul KV {_key} at {_consul.Address}";

    public bool TryGet(string key, out string reason)
    {
        if (_entries.TryGetValue(key, out var found))
        {
            reason = found;
            return true;
        }

        reason = string.Empty;
        return false;
    }

    /// <summary>Starts following the shared store (nothing to do without one).</summary>
    public void Start()
    {
        if (_consul is not null)
        {
            _query = _consul.CreateKeyValueQuery(_key);
            _loop = Task.Run(() => FollowAsync(_query, _consul, _stopping.Token), CancellationToken.None);
            _freshness = Task.Run(() => WatchFreshnessAsync(_stopping.Token), CancellationToken.None);
        }
    }

    /// <summary>Adds or replaces an entry; with a shared store, written there first (check-and-set, retried on a race).</summary>
    /// <exception cref="RevocationStoreUnavailableException">The shared store could not be written.</exception>
    public Task<bool> SetAsync(string key, string reason, CancellationToken cancellationToken) =>
        ChangeAsync(entries => entries.TryGetValue(key, out var r) && r == reason ? entries : entries.SetItem(key, reason), cancellationToken);

    /// <summary>Removes an entry; <see langword="false"/> when it was not there.</summary>
    /// <exception cref="RevocationStoreUnavailableException">The shared store could not be written.</exception>
    public Task<bool> RemoveAsync(string key, CancellationToken cancellationToken) =>
        ChangeAsync(entries => entries.Remove(key), cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        if (_freshness is not null)
        {
            await _freshness.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        _stopping.Dispose();
    }

    private async Task<bool> ChangeAsync(Func<ImmutableDictionary<string, string>, ImmutableDictionary<string, string>> change, CancellationToken cancellationToken)
    {
        if (_consul is null)
        {
            lock (_gate)
            {
                var next = change(_entries);
                return !ReferenceEquals(next, _entries) && Apply(next);
            }
        }

        for (var attempt = 0; attempt < 5; attempt++)
        {
            try
            {
                var current = (await _consul.GetKeyAsync(_key, cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
                var entries = current is null ? _entries : Parse(current) ?? throw new RevocationStoreUnavailableException(
                    $"The {_what} revocation list at {Location} is not valid JSON; fix or rewrite it before changing it.");
                var next = change(entries);
                if (ReferenceEquals(next, entries))
                {
                    InterlockedMax(ref _confirmedTicks, _time.GetUtcNow().UtcTicks);
                    Apply(entries);
                    return false;
                }

                // CAS on what was read (0: only if still absent); a concurrent writer makes this fail and we read again.
                if (await _consul.PutKeyAsync(_key, Serialize(next), current?.ModifyIndex ?? 0, cancellationToken).ConfigureAwait(false))
                {
                    _readFromStore = true;
                    InterlockedMax(ref _confirmedTicks, _time.GetUtcNow().UtcTicks);
                    Apply(next);
                    return true;
                }
            }
            catch (ConsulException ex)
            {
                throw new RevocationStoreUnavailableException($"The {_what} revocation list at {Location} could not be changed ({ex.Message}); nothing was revoked or restored.", ex);
            }
        }

        throw new RevocationStoreUnavailableException($"The {_what} revocation list at {Location} kept changing under this write; try again.");
    }

    private async Task FollowAsync(ConsulBlockingQuery<IReadOnlyList<ConsulKeyValue>> query, ConsulClient consul, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var result in query.WatchAsync(cancellationToken).ConfigureAwait(false))
            {
                var value = result.Value.FirstOrDefault(kv => kv.Key == _key);
                if (value is null)
                {
                    // Absent: the first replica since the store was configured, or the key was removed around the API.
                    // Either way, what this replica knows is written back rather than forgotten.
                    MarkRead();
                    if (!_entries.IsEmpty)
                    {
                        LogSeeding(_logger, _what, _entries.Count, _key);
                        try
                        {
                            await consul.PutKeyAsync(_key, Serialize(_entries), 0, cancellationToken).ConfigureAwait(false);
                        }
                        catch (ConsulException ex)
                        {
                            LogSeedFailed(_logger, _what, _key, ex.Message);
                        }
                    }

                    continue;
                }

                var entries = Parse(value);
                if (entries is null)
                {
                    // Written around the API and not readable: keep what is known.
                    LogInvalid(_logger, _what, _key, _entries.Count);
                    continue;
                }

                lock (_gate)
                {
                    Apply(entries);
                }

                MarkRead();
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// Logs when the list goes past its bound and when Consul confirms it again, and touches the copy on disk on each
    /// confirmation (its time is where a restarted replica starts counting). Checks a few times per bound.
    /// </summary>
    private async Task WatchFreshnessAsync(CancellationToken cancellationToken)
    {
        var every = TimeSpan.FromTicks(Math.Clamp(_maxStaleness.Ticks / 8, TimeSpan.FromMilliseconds(100).Ticks, TimeSpan.FromSeconds(30).Ticks));
        using var timer = new PeriodicTimer(every, _time);
        var wasCurrent = true;
        long touched = 0;
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                // A replica that never knew the lists refuses as "unknown" already; this reports lists that went stale.
                var confirmed = ConfirmedAt;
                var current = !IsKnown || IsCurrent;
                if (wasCurrent && !current)
                {
                    LogStale(_logger, _what, confirmed is { } at ? at.ToString("O", System.Globalization.CultureInfo.InvariantCulture) : "never", _maxStaleness, Location);
                }
                else if (!wasCurrent && current)
                {
                    LogCurrentAgain(_logger, _what, Location);
                }

                wasCurrent = current;

                // Past half the bound without an answer (a blocking request hung on a cut connection, or one that waits out
                // its wait after Consul came back), ask once without blocking: an unchanged list confirms at once.
                if (IsKnown && (confirmed is null || _time.GetUtcNow() - confirmed.Value > _maxStaleness / 2))
                {
                    await ProbeAsync(cancellationToken).ConfigureAwait(false);
                    confirmed = ConfirmedAt;
                }

                if (confirmed is { } when && when.UtcTicks > touched && File.Exists(_cachePath))
                {
                    try
                    {
                        File.SetLastWriteTimeUtc(_cachePath, when.UtcDateTime);
                        touched = when.UtcTicks;
                    }
                    catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                    {
                        // Only a restart during an outage reads this time; it then counts from an older one (refuses sooner).
                    }
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Reads the list without blocking; the same entries as held confirm them as of when the read was sent.</summary>
    private async Task ProbeAsync(CancellationToken cancellationToken)
    {
        var sent = _time.GetUtcNow();
        try
        {
            var value = (await _consul!.GetKeyAsync(_key, cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
            var read = value is null ? Empty : Parse(value);

            // A different list (or none where one is held) is the blocking query's to apply: its request returns at once.
            if (read is not null && SameEntries(read, _entries))
            {
                InterlockedMax(ref _confirmedTicks, sent.UtcTicks);
            }
        }
        catch (ConsulException)
        {
            // Still cut off: the blocking query logs its failures (4110).
        }
    }

    private static void InterlockedMax(ref long target, long value)
    {
        var current = Interlocked.Read(ref target);
        while (value > current)
        {
            var seen = Interlocked.CompareExchange(ref target, value, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }

    private static bool SameEntries(ImmutableDictionary<string, string> a, ImmutableDictionary<string, string> b) =>
        a.Count == b.Count && a.All(e => b.TryGetValue(e.Key, out var r) && r == e.Value);

    /// <summary>The store was read: from now on (restarts included) this replica knows the list, even an empty one.</summary>
    private void MarkRead()
    {
        _readFromStore = true;
        if (!File.Exists(_cachePath))
        {
            try
            {
                SecureFile.WriteAllText(_cachePath, Serialize(_entries));
            }
            catch (IOException ex)
            {
                LogCacheWriteFailed(_logger, _what, _cachePath, ex.Message);
            }
        }
    }

    /// <summary>Takes a new list, writes the local copy, and raises <see cref="Changed"/> when it differs.</summary>
    private bool Apply(ImmutableDictionary<string, string> next)
    {
        if (SameEntries(_entries, next))
        {
            return false;
        }

        _entries = next;
        _keys = [.. next.Keys];
        try
        {
            SecureFile.WriteAllText(_cachePath, Serialize(next));
        }
        catch (IOException ex)
        {
            // The list in memory (and in Consul) is what counts; the copy on disk is for restarts.
            LogCacheWriteFailed(_logger, _what, _cachePath, ex.Message);
            if (_consul is null)
            {
                throw;
            }
        }

        Changed?.Invoke();
        return true;
    }

    private static string Serialize(ImmutableDictionary<string, string> entries) =>
        JsonSerializer.Serialize(new SortedDictionary<string, string>(entries, StringComparer.Ordinal));

    private static ImmutableDictionary<string, string>? Parse(ConsulKeyValue value)
    {
        try
        {
            return JsonSerializer.Deserialize<Dictionary<string, string>>(value.Value.Span)?.ToImmutableDictionary(StringComparer.Ordinal);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static ImmutableDictionary<string, string> ReadCache(string path, string what)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(path));

            // Token lists were once written as an array of names.
            if (document.RootElement.ValueKind == JsonValueKind.Array)
            {
                return document.RootElement.EnumerateArray().Select(e => e.GetString() ?? string.Empty).Where(n => n.Length > 0)
                    .ToImmutableDictionary(n => n, _ => "revoked", StringComparer.Ordinal);
            }

            return (document.RootElement.Deserialize<Dictionary<string, string>>() ?? []).ToImmutableDictionary(StringComparer.Ordinal);
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            // Failing open here would silently un-revoke; refuse to start instead.
            throw new InvalidDataException($"The {what} revocation list '{path}' is not valid JSON; fix or remove it (removing it restores every {what} this replica alone knew of).", ex);
        }
    }

    [LoggerMessage(EventId = 1201, Level = LogLevel.Warning, Message = "The {What} revocation list is not in Consul at {Key}; writing the {Count} revocation(s) this replica knows there.")]
    private static partial void LogSeeding(ILogger logger, string what, int count, string key);

    [LoggerMessage(EventId = 1202, Level = LogLevel.Error, Message = "Could not write the {What} revocation list to Consul at {Key}; retrying when it next changes: {Error}")]
    private static partial void LogSeedFailed(ILogger logger, string what, string key, string error);

    [LoggerMessage(EventId = 1203, Level = LogLevel.Error, Message = "The {What} revocation list at Consul key {Key} is not valid JSON and was not loaded; the {Count} revocation(s) known stay in force.")]
    private static partial void LogInvalid(ILogger logger, string what, string key, int count);

    [LoggerMessage(EventId = 1204, Level = LogLevel.Error, Message = "Could not write the local copy of the {What} revocation list to {Path}: {Error}")]
    private static partial void LogCacheWriteFailed(ILogger logger, string what, string path, string error);

    [LoggerMessage(EventId = 1205, Level = LogLevel.Error, Message = "The {What} revocation list was last confirmed with Consul at {ConfirmedAt}, longer ago than ControlPlane:Consul:RevocationsMaxStaleness ({MaxStaleness}); this replica issues no certificate until {Location} answers again (503 revocations-stale).")]
    private static partial void LogStale(ILogger logger, string what, string confirmedAt, TimeSpan maxStaleness, string location);

    [LoggerMessage(EventId = 1206, Level = LogLevel.Information, Message = "The {What} revocation list is confirmed with {Location} again; this replica issues certificates again.")]
    private static partial void LogCurrentAgain(ILogger logger, string what, string location);
}
