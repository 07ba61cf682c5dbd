using System.Runtime.CompilerServices;
using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Time.Testing;

namespace MeshKit.Consul.Tests.Locks;

/// <summary>How the fake Consul answers the lock's calls.</summary>
internal enum FakeConsulMode
{
    /// <summary>Answers, following Consul's rules for sessions and locks.</summary>
    Answer,

    /// <summary>Every call fails at once, as when the connection is refused.</summary>
    Refuse,

    /// <summary>Every call hangs until the caller gives up, as when packets are dropped.</summary>
    Hang,
}

/// <summary>
/// Consul's sessions and one key, in memory and on a fake clock, for the lock's state machine: sessions with a lock
/// delay; acquire refused while another session holds the key or its lock delay runs; invalidation releasing the key.
/// It records every call with the virtual time it was made at, and can make Consul refuse or hang.
/// </summary>
internal sealed class FakeLockBackend(FakeTimeProvider time) : IConsulLockBackend
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, TimeSpan> _sessions = new(StringComparer.Ordinal);
    private readonly List<(string Call, string Argument, DateTimeOffset At)> _calls = [];
    private readonly List<Channel<ConsulQueryResult<ConsulKeyValue?>>> _watchers = [];
    private ConsulKeyValue? _key;
    private ulong _index = 10;
    private DateTimeOffset _lockDelayUntil = DateTimeOffset.MinValue;
    private int _sessionCount;
    private bool _watchPaused;

    public FakeConsulMode Mode { get; set; }

    /// <summary>Gets the key's current state.</summary>
    public ConsulKeyValue? Key
    {
        get
        {
            lock (_gate)
            {
                return _key;
            }
        }
    }

    /// <summary>Gets the calls made, in order: name, argument (session or key), virtual time.</summary>
    public IReadOnlyList<(string Call, string Argument, DateTimeOffset At)> Calls
    {
        get
        {
            lock (_gate)
            {
                return [.. _calls];
            }
        }
    }

    /// <summary>Gets or sets whether the blocking query holds its answers back (a slow query); releasing it delivers the latest state.</summary>
    public bool WatchPaused
    {
        get => _watchPaused;
        set
        {
            lock (_gate)
            {
                _watchPaused = value;
                if (!value)
                {
                    Publish();
                }
            }
        }
    }

    public int Count(string call)
    {
        lock (_gate)
        {
            return _calls.Count(c => c.Call == call);
        }
    }

    public bool HasSession(string session)
    {
        lock (_gate)
        {
            return _sessions.ContainsKey(session);
        }
    }

    /// <summary>Another session (not the lock's) holds the key, as when another replica leads.</summary>
    public void HoldBy(string session, TimeSpan lockDelay, string value = "other")
    {
        lock (_gate)
        {
            _sessions[session] = lockDelay;
            _key = NewKey(session, value, (_key?.LockIndex ?? 0) + 1);
            Publish();
        }
    }

    /// <summary>The holder releases the key (no lock delay).</summary>
    public void Release()
    {
        lock (_gate)
        {
            _key = NewKey(null, _key?.GetValueAsString() ?? string.Empty, _key?.LockIndex ?? 0);
            Publish();
        }
    }

    /// <summary>Consul invalidates a session (a failed check, or its TTL): the key it holds is released and its lock delay starts.</summary>
    public void Invalidate(string session)
    {
        lock (_gate)
        {
            InvalidateLocked(session);
        }
    }

    /// <summary>The key is written over by another session's acquisition while the lock's session still exists (an operator).</summary>
    public void TakeKey(string session)
    {
        lock (_gate)
        {
            _sessions.TryAdd(session, TimeSpan.Zero);
            _key = NewKey(session, "intruder", (_key?.LockIndex ?? 0) + 1);
            Publish();
        }
    }

    public async Task<string> CreateSessionAsync(ConsulSessionRequest request, CancellationToken cancellationToken)
    {
        await EnterAsync("create", request.Name ?? string.Empty, cancellationToken);
        lock (_gate)
        {
            var id = "session-" + (++_sessionCount).ToString(System.Globalization.CultureInfo.InvariantCulture);
            _sessions[id] = request.LockDelay;
            return id;
        }
    }

    public async Task<ConsulSession?> RenewSessionAsync(string sessionId, CancellationToken cancellationToken)
    {
        await EnterAsync("renew", sessionId, cancellationToken);
        lock (_gate)
        {
            return _sessions.ContainsKey(sessionId) ? new ConsulSession { Id = sessionId } : null;
        }
    }

    public async Task DestroySessionAsync(string sessionId, CancellationToken cancellationToken)
    {
        await EnterAsync("destroy", sessionId, cancellationToken);
        lock (_gate)
        {
            InvalidateLocked(sessionId);
        }
    }

    public async Task<bool> AcquireAsync(string key, string sessionId, ReadOnlyMemory<byte> value, CancellationToken cancellationToken)
    {
        await EnterAsync("acquire", sessionId, cancellationToken);
        lock (_gate)
        {
            if (!_sessions.ContainsKey(sessionId))
            {
                throw new ConsulException("PUT /v1/kv/" + key, ConsulErrorKind.Status, System.Net.HttpStatusCode.InternalServerError, $"invalid session \"{sessionId}\"");
            }

            if (time.GetUtcNow() < _lockDelayUntil || (!string.IsNullOrEmpty(_key?.Session) && _key.Session != sessionId))
            {
                return false;
            }

            var lockIndex = _key?.Session == sessionId ? _key.LockIndex : (_key?.LockIndex ?? 0) + 1;
            _key = NewKey(sessionId, Encoding.UTF8.GetString(value.Span), lockIndex);
            Publish();
            return true;
        }
    }

    public async Task<bool> ReleaseAsync(string key, string sessionId, ReadOnlyMemory<byte> value, CancellationToken cancellationToken)
    {
        await EnterAsync("release", sessionId, cancellationToken);
        lock (_gate)
        {
            if (_key?.Session != sessionId)
            {
                return false;
            }

            _key = NewKey(null, Encoding.UTF8.GetString(value.Span), _key.LockIndex);
            Publish();
            return true;
        }
    }

    public async Task<ConsulQueryResult<ConsulKeyValue?>> GetKeyAsync(string key, CancellationToken cancellationToken)
    {
        await EnterAsync("get", key, cancellationToken);
        lock (_gate)
        {
            return Result();
        }
    }

    public async IAsyncEnumerable<ConsulQueryResult<ConsulKeyValue?>> WatchKeyAsync(string key, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var channel = Channel.CreateUnbounded<ConsulQueryResult<ConsulKeyValue?>>();
        lock (_gate)
        {
            _watchers.Add(channel);
            if (!_watchPaused && Mode == FakeConsulMode.Answer)
            {
                channel.Writer.TryWrite(Result());
            }
        }

        await foreach (var result in channel.Reader.ReadAllAsync(cancellationToken))
        {
            yield return result;
        }
    }

    private static ConsulKeyValue? Copy(ConsulKeyValue? key) => key;

    private ConsulKeyValue NewKey(string? session, string value, ulong lockIndex)
    {
        _index++;
        return new ConsulKeyValue
        {
            Key = "meshkit/leader",
            Value = Encoding.UTF8.GetBytes(value),
            Session = session,
            LockIndex = lockIndex,
            CreateIndex = _key?.CreateIndex ?? _index,
            ModifyIndex = _index,
        };
    }

    private ConsulQueryResult<ConsulKeyValue?> Result() =>
        new(Copy(_key), new ConsulQueryMeta(_key?.ModifyIndex ?? _index, true, TimeSpan.Zero), time.GetUtcNow());

    private void InvalidateLocked(string session)
    {
        if (!_sessions.Remove(session, out var lockDelay))
        {
            return;
        }

        if (_key?.Session == session)
        {
            _key = NewKey(null, _key.GetValueAsString(), _key.LockIndex);
            _lockDelayUntil = time.GetUtcNow() + lockDelay;
            Publish();
        }
    }

    private void Publish()
    {
        if (_watchPaused)
        {
            return;
        }

        var result = Result();
        foreach (var watcher in _watchers)
        {
            watcher.Writer.TryWrite(result);
        }
    }

    private async Task EnterAsync(string call, string argument, CancellationToken cancellationToken)
    {
        FakeConsulMode mode;
        lock (_gate)
        {
            _calls.Add((call, argument, time.GetUtcNow()));
            mode = Mode;
        }

        switch (mode)
        {
            case FakeConsulMode.Refuse:
                throw new ConsulException(call, ConsulErrorKind.Unreachable, null, $"Consul {call} could not be reached (refused).");
            case FakeConsulMode.Hang:
                await Task.Delay(Timeout.InfiniteTimeSpan, cancellationToken);
                break;
        }
    }
}
