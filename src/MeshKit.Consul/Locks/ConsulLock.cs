using System.Globalization;
using Microsoft.Extensions.Logging;

namespace MeshKit.Consul;

/// <summary>
/// A lock on one Consul KV key, held through a session, for work that one process among several must do alone (leader
/// election). Once started it keeps a session alive (created with a TTL and a lock delay, renewed every half TTL), tries
/// to acquire the key while the key is free, follows the key with a blocking query while another session holds it, and
/// raises <see cref="Acquired"/> and <see cref="Lost"/>.
/// <para>
/// <b>No two holders at once.</b> The holder counts the lock as held only until a whole TTL has passed since the start of
/// its last successful renewal (or of the session's creation). Consul promises not to invalidate a session before its
/// TTL has passed since it processed the renewal (in fact it waits twice the TTL), and that moment comes after the
/// holder sent it; then the key stays locked for the lock delay, so nobody else can acquire it until
/// <c>TTL + lock delay</c> (at the earliest) after the holder last renewed — when the holder has already stopped. So
/// the holder reports the loss at once, without asking Consul, when: a renewal says the session is gone; no renewal has
/// succeeded for a TTL (Consul unreachable or failing, however long its requests hang); the key no longer names the
/// session (released by someone else, deleted, taken); or the lock is stopped. What this cannot cover is a holder whose
/// process is frozen past the TTL and the lock delay (a long GC or VM pause) while it is in the middle of a step: steps
/// that write shared state should also use check-and-set writes, so that a stale holder's write fails.
/// </para>
/// <para>
/// While the lock is held, <see cref="HeldToken"/> is a token cancelled at the moment of the loss: pass it to the work
/// the holder does. Consul failures never throw out of the lock; they are logged and retried.
/// </para>
/// </summary>
public sealed partial class ConsulLock : IAsyncDisposable
{
    private static readonly CancellationToken CancelledToken = new(canceled: true);

    private readonly IConsulLockBackend _backend;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ConsulSessionRequest _sessionRequest;
    private readonly Lock _gate = new();
    private readonly List<string> _abandoned = [];
    private readonly ITimer _expiry;

    private readonly TimeSpan _renewInterval;
    private readonly TimeSpan _renewRetry;
    private readonly TimeSpan _callTimeout;
    private readonly TimeSpan _acquireRetry;

    private CancellationTokenSource? _stopping;
    private Task _loops = Task.CompletedTask;
    private bool _stopped;

    // The session: its ID, and until when the lock may count on it (a TimeProvider timestamp).
    private string? _session;
    private long _validUntil;
    private bool _renewNow;
    private TaskCompletionSource _sessionWake = NewSignal();

    // The lock: whether this process holds it, the key's index when it was acquired, and the token of this holding.
    private bool _held;
    private ulong _acquiredIndex;
    private CancellationTokenSource? _heldSource;
    private DateTimeOffset? _heldSince;
    private long _nextAttempt;

    // The key as last seen.
    private ConsulKeyValue? _observed;
    private ulong _observedIndex;
    private bool _observedKnown;
    private TaskCompletionSource _contendWake = NewSignal();

    /// <summary>Initializes a new instance; nothing is sent until <see cref="StartAsync"/>.</summary>
    /// <param name="client">The Consul client; its clock (<see cref="TimeProvider"/>) times renewals and the TTL.</param>
    /// <param name="options">The key, the value to write, the session's TTL and lock delay.</param>
    /// <param name="logger">Where acquisitions, losses and Consul failures are logged.</param>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public ConsulLock(ConsulClient client, ConsulLockOptions options, ILogger<ConsulLock> logger)
        : this(new ConsulClientLockBackend(client ?? throw new ArgumentNullException(nameof(client))), options, client.TimeProvider, logger)
    {
    }

    internal ConsulLock(IConsulLockBackend backend, ConsulLockOptions options, TimeProvider time, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        options.Validate();
        _backend = backend;
        _time = time;
        _logger = logger;
        Key = options.Key;
        Value = options.Value;
        Ttl = options.Ttl;
        LockDelay = options.LockDelay;
        _sessionRequest = new ConsulSessionRequest
        {
            Name = options.SessionName ?? "MeshKit lock " + options.Key,
            Ttl = options.Ttl,
            LockDelay = options.LockDelay,
            Behavior = ConsulSessionBehavior.Release,
            NodeChecks = options.NodeChecks,
        };

        var floor = TimeSpan.FromMilliseconds(10);
        _renewInterval = options.Ttl / 2;
        _renewRetry = Max(options.Ttl / 10, floor);
        _callTimeout = Max(options.Ttl / 3, floor);

        // After a refusal on a free key (its lock delay runs, or another contender won), try again a few times per delay.
        _acquireRetry = TimeSpan.FromTicks(Math.Clamp(options.LockDelay.Ticks / 4, TimeSpan.FromMilliseconds(50).Ticks, TimeSpan.FromSeconds(5).Ticks));
        _expiry = _time.CreateTimer(static state => ((ConsulLock)state!).OnExpiryTimer(), this, System.Threading.Timeout.InfiniteTimeSpan, System.Threading.Timeout.InfiniteTimeSpan);
    }

    /// <summary>Raised when this process has acquired the key (on the thread that saw it).</summary>
    public event EventHandler? Acquired;

    /// <summary>Raised at once when this process stops holding the key, after <see cref="HeldToken"/> was cancelled.</summary>
    public event EventHandler<ConsulLockLostEventArgs>? Lost;

    /// <summary>Raised when the key's holder (its <c>Session</c> or value) changed, as seen by this process.</summary>
    public event EventHandler? HolderChanged;

    /// <summary>Gets the key competed for.</summary>
    public string Key { get; }

    /// <summary>Gets the value this process writes into the key when it acquires it.</summary>
    public ReadOnlyMemory<byte> Value { get; }

    /// <summary>Gets the session TTL; the lock counts as lost when no renewal has succeeded for this long.</summary>
    public TimeSpan Ttl { get; }

    /// <summary>Gets the session's lock delay.</summary>
    public TimeSpan LockDelay { get; }

    /// <summary>Gets a value indicating whether this process holds the key now.</summary>
    public bool IsHeld
    {
        get
        {
            lock (_gate)
            {
                return _held;
            }
        }
    }

    /// <summary>Gets when this process acquired the key it holds now, or <see langword="null"/> when it does not hold it.</summary>
    public DateTimeOffset? HeldSince
    {
        get
        {
            lock (_gate)
            {
                return _held ? _heldSince : null;
            }
        }
    }

    /// <summary>
    /// Gets a token that is cancelled the moment this holding ends; an already cancelled token when the key is not held.
    /// Take it before starting work that only the holder may do, and pass it along.
    /// </summary>
    public CancellationToken HeldToken
    {
        get
        {
            lock (_gate)
            {
                return _heldSource?.Token ?? CancelledToken;
            }
        }
    }

    /// <summary>Gets the ID of the session this process uses now, or <see langword="null"/> while it has none.</summary>
    public string? SessionId
    {
        get
        {
            lock (_gate)
            {
                return _session;
            }
        }
    }

    /// <summary>
    /// Gets the key as this process last saw it, or <see langword="null"/> when it does not exist or has not been read yet:
    /// its <see cref="ConsulKeyValue.Session"/> names the holder's session (empty when nobody holds it) and its value is
    /// what the holder wrote.
    /// </summary>
    public ConsulKeyValue? Observed
    {
        get
        {
            lock (_gate)
            {
                return _observed;
            }
        }
    }

    /// <summary>Starts competing for the key: creates the session, then acquires or follows the key. Returns at once.</summary>
    /// <param name="cancellationToken">Not used; the lock runs until <see cref="StopAsync"/>.</param>
    /// <returns>A completed task.</returns>
    /// <exception cref="ObjectDisposedException">The lock was stopped; a stopped lock does not start again.</exception>
    public Task StartAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_stopped, this);
            if (_stopping is not null)
            {
                return Task.CompletedTask;
            }

            _stopping = new CancellationTokenSource();
        }

        var stopping = _stopping.Token;
        _loops = Task.WhenAll(
            Task.Run(() => KeepSessionAsync(stopping), CancellationToken.None),
            Task.Run(() => FollowKeyAsync(stopping), CancellationToken.None),
            Task.Run(() => ContendAsync(stopping), CancellationToken.None));
        return Task.CompletedTask;
    }

    /// <summary>
    /// Stops: the holding ends first (<see cref="Lost"/> with <see cref="ConsulLockLossReason.Stopped"/>), then the key is
    /// released (no lock delay, so another process can take over at once) and the session destroyed. Consul failures are
    /// logged; the key is then freed by Consul when the session expires, after its lock delay.
    /// </summary>
    /// <param name="cancellationToken">Cancels the release and the destroy.</param>
    /// <returns>Completes when stopped.</returns>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        CancellationTokenSource? held;
        CancellationTokenSource? stopping;
        lock (_gate)
        {
            if (_stopped)
            {
                return;
            }

            _stopped = true;
            stopping = _stopping;
            held = TakeHeld();
        }

        if (held is not null)
        {
            RaiseLost(held, ConsulLockLossReason.Stopped, "the lock is stopping");
        }

        if (stopping is not null)
        {
            await stopping.CancelAsync().ConfigureAwait(false);
            await _loops.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            stopping.Dispose();
        }

        await _expiry.DisposeAsync().ConfigureAwait(false);
        string? session;
        string[] abandoned;
        lock (_gate)
        {
            session = _session;
            _session = null;
            abandoned = [.. _abandoned];
            _abandoned.Clear();
        }

        if (session is not null)
        {
            // Release first: a release applies no lock delay; the destroy after it then frees nothing else.
            try
            {
                using var timeout = Timeout(cancellationToken);
                if (await _backend.ReleaseAsync(Key, session, Value, timeout.Token).ConfigureAwait(false))
                {
                    LogReleased(_logger, Key, session);
                }
            }
            catch (Exception ex) when (ex is ConsulException or OperationCanceledException)
            {
                LogReleaseFailed(_logger, ex, Key, session, LockDelay.TotalSeconds);
            }

            await DestroyAsync(session, cancellationToken).ConfigureAwait(false);
        }

        foreach (var old in abandoned)
        {
            await DestroyAsync(old, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Stops the lock (see <see cref="StopAsync"/>).</summary>
    /// <returns>Completes when stopped.</returns>
    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None).ConfigureAwait(false);
        lock (_gate)
        {
            _heldSource?.Dispose();
            _heldSource = null;
        }
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private static void Signal(ref TaskCompletionSource signal)
    {
        var previous = signal;
        signal = NewSignal();
        previous.TrySetResult();
    }

    private static bool IsFreeFor(ConsulKeyValue? key, string session) =>
        key is null || string.IsNullOrEmpty(key.Session) || key.Session == session;

    private static bool SameHolder(ConsulKeyValue? a, ConsulKeyValue? b) =>
        (a?.Session ?? string.Empty) == (b?.Session ?? string.Empty) && (a?.Value ?? default).Span.SequenceEqual((b?.Value ?? default).Span);

    /// <summary>Keeps a session: creates one when there is none, renews it every half TTL, retries a failed renewal often.</summary>
    private async Task KeepSessionAsync(CancellationToken stopping)
    {
        var stopped = Task.Delay(System.Threading.Timeout.InfiniteTimeSpan, stopping);
        var failures = 0;
        long nextRenew = 0;
        while (!stopping.IsCancellationRequested)
        {
            string? session;
            Task wake;
            bool renewNow;
            lock (_gate)
            {
                session = _session;
                wake = _sessionWake.Task;
                renewNow = _renewNow;
                _renewNow = false;
            }

            try
            {
                if (session is null)
                {
                    await DestroyAbandonedAsync(stopping).ConfigureAwait(false);
                    var sent = _time.GetTimestamp();
                    string created;
                    using (var timeout = Timeout(stopping))
                    {
                        created = await _backend.CreateSessionAsync(_sessionRequest, timeout.Token).ConfigureAwait(false);
                    }

                    lock (_gate)
                    {
                        if (_stopped)
                        {
                            _abandoned.Add(created);
                            return;
                        }

                        _session = created;
                        _validUntil = sent + Ticks(Ttl);
                        Signal(ref _contendWake);
                    }

                    ArmExpiry(sent);
                    failures = 0;
                    nextRenew = sent + Ticks(_renewInterval);
                    LogSessionCreated(_logger, created, Key, Ttl.TotalSeconds, LockDelay.TotalSeconds);
                    continue;
                }

                var wait = renewNow ? TimeSpan.Zero : _time.GetElapsedTime(_time.GetTimestamp(), nextRenew);
                if (wait > TimeSpan.Zero)
                {
                    await WaitAsync(wake, wait, stopped, stopping).ConfigureAwait(false);
                    continue;
                }

                var renewSent = _time.GetTimestamp();
                ConsulSession? renewed;
                using (var timeout = Timeout(stopping))
                {
                    renewed = await _backend.RenewSessionAsync(session, timeout.Token).ConfigureAwait(false);
                }

                if (renewed is null)
                {
                    OnSessionGone(session);
                    continue;
                }

                bool current;
                lock (_gate)
                {
                    current = _session == session;
                    if (current)
                    {
                        _validUntil = renewSent + Ticks(Ttl);
                    }
                }

                if (current)
                {
                    ArmExpiry(renewSent);
                }

                if (failures > 0)
                {
                    LogRenewRecovered(_logger, session, failures);
                }

                failures = 0;
                nextRenew = renewSent + Ticks(_renewInterval);
            }
            catch (Exception ex) when (!stopping.IsCancellationRequested && ex is ConsulException or OperationCanceledException)
            {
                failures++;
                if (session is null)
                {
                    var delay = RetryBackoff.Next(failures - 1, _renewRetry, Ttl);
                    LogSessionCreateFailed(_logger, ex, Key, failures, delay.TotalMilliseconds);
                    await Delay(delay, stopping).ConfigureAwait(false);
                }
                else
                {
                    LogRenewFailed(_logger, ex, session, Key, failures, Math.Max(0, _time.GetElapsedTime(_time.GetTimestamp(), Volatile.Read(ref _validUntil)).TotalMilliseconds));
                    nextRenew = _time.GetTimestamp() + Ticks(_renewRetry);
                }
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
        }
    }

    /// <summary>Follows the key with blocking queries; a change that no longer names this session ends the holding.</summary>
    private async Task FollowKeyAsync(CancellationToken stopping)
    {
        try
        {
            await foreach (var result in _backend.WatchKeyAsync(Key, stopping).ConfigureAwait(false))
            {
                OnKeyObserved(result.Value, result.Index);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
    }

    /// <summary>Acquires the key whenever it is free and this process has a session.</summary>
    private async Task ContendAsync(CancellationToken stopping)
    {
        var stopped = Task.Delay(System.Threading.Timeout.InfiniteTimeSpan, stopping);
        while (!stopping.IsCancellationRequested)
        {
            Task wake;
            string? session;
            var now = _time.GetTimestamp();
            long nextAttempt;
            bool eligible;
            lock (_gate)
            {
                wake = _contendWake.Task;
                session = _session;
                nextAttempt = _nextAttempt;
                eligible = !_held && !_stopped && session is not null && _observedKnown && IsFreeFor(_observed, session);
            }

            if (!eligible || now < nextAttempt)
            {
                var wait = eligible ? _time.GetElapsedTime(now, nextAttempt) : System.Threading.Timeout.InfiniteTimeSpan;
                await WaitAsync(wake, wait, stopped, stopping).ConfigureAwait(false);
                continue;
            }

            try
            {
                bool acquired;
                using (var timeout = Timeout(stopping))
                {
                    acquired = await _backend.AcquireAsync(Key, session!, Value, timeout.Token).ConfigureAwait(false);
                }

                if (!acquired)
                {
                    // Another contender was first, or the key's lock delay runs (Consul does not say which).
                    Volatile.Write(ref _nextAttempt, _time.GetTimestamp() + Ticks(_acquireRetry));
                    LogAcquireRefused(_logger, Key, _acquireRetry.TotalMilliseconds);
                    continue;
                }

                // The index at which this session holds the key: older answers of the blocking query are not news.
                ConsulQueryResult<ConsulKeyValue?> read;
                using (var timeout = Timeout(stopping))
                {
                    read = await _backend.GetKeyAsync(Key, timeout.Token).ConfigureAwait(false);
                }

                OnAcquired(session!, read);
            }
            catch (Exception ex) when (!stopping.IsCancellationRequested && ex is ConsulException or OperationCanceledException)
            {
                // Perhaps the session is gone (Consul answers 500 "invalid session"): a renewal now tells.
                LogAcquireFailed(_logger, ex, Key);
                lock (_gate)
                {
                    _nextAttempt = _time.GetTimestamp() + Ticks(Max(_acquireRetry, _renewRetry));
                    _renewNow = true;
                    Signal(ref _sessionWake);
                }
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
        }
    }

    private void OnAcquired(string session, ConsulQueryResult<ConsulKeyValue?> read)
    {
        var key = read.Value;
        bool acquired;
        lock (_gate)
        {
            acquired = !_held && !_stopped && _session == session && key?.Session == session && _time.GetTimestamp() < _validUntil;
            if (read.Index >= _observedIndex || !_observedKnown)
            {
                _observed = key;
                _observedIndex = read.Index;
                _observedKnown = true;
            }

            if (acquired)
            {
                _held = true;
                _acquiredIndex = key!.ModifyIndex > read.Index ? key.ModifyIndex : read.Index;
                _heldSource = new CancellationTokenSource();
                _heldSince = _time.GetUtcNow();
            }
        }

        if (!acquired)
        {
            return;
        }

        LogAcquired(_logger, Key, session, key!.LockIndex);
        Raise(Acquired, EventArgs.Empty);
    }

    private void OnKeyObserved(ConsulKeyValue? key, ulong index)
    {
        CancellationTokenSource? lost = null;
        bool holderChanged;
        string? session;
        lock (_gate)
        {
            holderChanged = !_observedKnown || !SameHolder(_observed, key);
            _observed = key;
            _observedIndex = index;
            _observedKnown = true;
            session = _session;
            if (_held && index > _acquiredIndex && key?.Session != session)
            {
                lost = TakeHeld();
            }

            Signal(ref _contendWake);
        }

        if (lost is not null)
        {
            var detail = key is null
                ? "the key was deleted"
                : string.IsNullOrEmpty(key.Session) ? "the key was released by another client" : $"the key is held by session {key.Session}";
            RaiseLost(lost, ConsulLockLossReason.KeyLost, detail);
        }

        if (holderChanged)
        {
            LogHolderChanged(_logger, Key, string.IsNullOrEmpty(key?.Session) ? "(nobody)" : key.Session, index);
            Raise(HolderChanged, EventArgs.Empty);
        }
    }

    /// <summary>A renewal answered 404: the session (and any lock it held) is gone.</summary>
    private void OnSessionGone(string session)
    {
        CancellationTokenSource? lost;
        lock (_gate)
        {
            if (_session != session)
            {
                return;
            }

            _session = null;
            lost = TakeHeld();
            Signal(ref _contendWake);
        }

        LogSessionGone(_logger, session, Key);
        if (lost is not null)
        {
            RaiseLost(lost, ConsulLockLossReason.SessionInvalidated, $"Consul no longer knows session {session} (invalidated or destroyed)");
        }
    }

    /// <summary>The TTL has passed since the last successful renewal: the session may be gone any moment, so the lock is.</summary>
    private void OnExpiryTimer()
    {
        CancellationTokenSource? lost;
        string session;
        double sinceMs;
        TimeSpan early;
        lock (_gate)
        {
            if (_session is null || _stopped)
            {
                return;
            }

            early = _time.GetElapsedTime(_time.GetTimestamp(), _validUntil);
        }

        if (early > TimeSpan.Zero)
        {
            // A timer may fire a little before its time (its clock is coarser than the timestamps), or the session was
            // renewed meanwhile: wait for the rest.
            ArmExpiryIn(TimeSpan.FromMilliseconds(Math.Ceiling(early.TotalMilliseconds)));
            return;
        }

        lock (_gate)
        {
            if (_session is null || _stopped || _time.GetTimestamp() < _validUntil)
            {
                return;
            }

            session = _session;
            sinceMs = (Ttl + _time.GetElapsedTime(_validUntil)).TotalMilliseconds;
            _abandoned.Add(session);
            _session = null;
            lost = TakeHeld();
            Signal(ref _sessionWake);
            Signal(ref _contendWake);
        }

        LogSessionExpired(_logger, session, Key, Ttl.TotalSeconds);
        if (lost is not null)
        {
            RaiseLost(lost, ConsulLockLossReason.SessionExpired, string.Create(CultureInfo.InvariantCulture, $"no renewal of session {session} succeeded for {sinceMs / 1000:0.###} s, its TTL is {Ttl.TotalSeconds:0.###} s"));
        }
    }

    /// <summary>Ends the holding under the gate; the caller cancels the returned source outside it.</summary>
    private CancellationTokenSource? TakeHeld()
    {
        if (!_held)
        {
            return null;
        }

        _held = false;
        _heldSince = null;
        var source = _heldSource;
        _heldSource = null;
        return source;
    }

    private void RaiseLost(CancellationTokenSource held, ConsulLockLossReason reason, string detail)
    {
        LogLost(_logger, Key, reason, detail);
        try
        {
            held.Cancel();
        }
        catch (AggregateException ex)
        {
            LogHandlerFailed(_logger, ex, Key);
        }

        Raise(Lost, new ConsulLockLostEventArgs(reason, detail));
    }

    private void Raise<T>(EventHandler<T>? handler, T args)
    {
        try
        {
            handler?.Invoke(this, args);
        }
        catch (Exception ex)
        {
            LogHandlerFailed(_logger, ex, Key);
        }
    }

    private void Raise(EventHandler? handler, EventArgs args)
    {
        try
        {
            handler?.Invoke(this, args);
        }
        catch (Exception ex)
        {
            LogHandlerFailed(_logger, ex, Key);
        }
    }

    private void ArmExpiry(long from) => ArmExpiryIn(_time.GetElapsedTime(_time.GetTimestamp(), from + Ticks(Ttl)));

    private void ArmExpiryIn(TimeSpan due)
    {
        try
        {
            _expiry.Change(due > TimeSpan.Zero ? due : TimeSpan.Zero, System.Threading.Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException)
        {
            // Stopped meanwhile.
        }
    }

    private async Task DestroyAbandonedAsync(CancellationToken stopping)
    {
        string[] abandoned;
        lock (_gate)
        {
            abandoned = [.. _abandoned];
        }

        foreach (var session in abandoned)
        {
            // A session given up while Consul was unreachable may still hold the key: destroying it frees the key after
            // its lock delay instead of after Consul's own expiry (up to twice the TTL). Until Consul answers, no new one.
            try
            {
                using var timeout = Timeout(stopping);
                await _backend.DestroySessionAsync(session, timeout.Token).ConfigureAwait(false);
            }
            catch (ConsulException ex) when (ex.Kind is ConsulErrorKind.Status or ConsulErrorKind.MalformedResponse)
            {
                // Consul answered and refused: it will end the session at its TTL; waiting for that would not help.
                LogDestroyFailed(_logger, ex, session);
            }

            lock (_gate)
            {
                _abandoned.Remove(session);
            }
        }
    }

    private async Task DestroyAsync(string session, CancellationToken cancellationToken)
    {
        try
        {
            using var timeout = Timeout(cancellationToken);
            await _backend.DestroySessionAsync(session, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is ConsulException or OperationCanceledException)
        {
            LogDestroyFailed(_logger, ex, session);
        }
    }

    private async Task Delay(TimeSpan delay, CancellationToken stopping)
    {
        try
        {
            await Task.Delay(delay, _time, stopping).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>One Consul call may take a third of the TTL: a hung renewal must leave time for another before the TTL ends.</summary>
    private CallTimeout Timeout(CancellationToken cancellationToken) => new(_callTimeout, _time, cancellationToken);

    /// <summary>Waits for a signal, the time to pass, or the stop, and frees its timer when the signal comes first.</summary>
    private async Task WaitAsync(Task wake, TimeSpan wait, Task stopped, CancellationToken stopping)
    {
        if (wait == System.Threading.Timeout.InfiniteTimeSpan)
        {
            await Task.WhenAny(wake, stopped).ConfigureAwait(false);
            return;
        }

        using var cut = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        await Task.WhenAny(wake, Task.Delay(wait, _time, cut.Token)).ConfigureAwait(false);
        await cut.CancelAsync().ConfigureAwait(false);
    }

    private long Ticks(TimeSpan span) => (long)(span.TotalSeconds * _time.TimestampFrequency);

    /// <summary>A call's deadline on the lock's clock, linked to the caller's token.</summary>
    private sealed class CallTimeout : IDisposable
    {
        private readonly CancellationTokenSource _deadline;
        private readonly CancellationTokenSource _linked;

        public CallTimeout(TimeSpan limit, TimeProvider time, CancellationToken outer)
        {
            _deadline = new CancellationTokenSource(limit, time);
            _linked = CancellationTokenSource.CreateLinkedTokenSource(outer, _deadline.Token);
        }

        public CancellationToken Token => _linked.Token;

        public void Dispose()
        {
            _linked.Dispose();
            _deadline.Dispose();
        }
    }

    [LoggerMessage(EventId = 4140, Level = LogLevel.Information, Message = "Acquired the Consul lock {Key} with session {Session} (lock index {LockIndex}).")]
    private static partial void LogAcquired(ILogger logger, string key, string session, ulong lockIndex);

    [LoggerMessage(EventId = 4141, Level = LogLevel.Warning, Message = "Lost the Consul lock {Key} ({Reason}): {Detail}.")]
    private static partial void LogLost(ILogger logger, string key, ConsulLockLossReason reason, string detail);

    [LoggerMessage(EventId = 4142, Level = LogLevel.Debug, Message = "Created Consul session {Session} for the lock {Key} (TTL {TtlSeconds} s, lock delay {LockDelaySeconds} s).")]
    private static partial void LogSessionCreated(ILogger logger, string session, string key, double ttlSeconds, double lockDelaySeconds);

    [LoggerMessage(EventId = 4143, Level = LogLevel.Warning, Message = "Could not create a Consul session for the lock {Key} (failure {Failures} in a row); retrying in {DelayMs:0} ms.")]
    private static partial void LogSessionCreateFailed(ILogger logger, Exception error, string key, int failures, double delayMs);

    [LoggerMessage(EventId = 4144, Level = LogLevel.Warning, Message = "Could not renew Consul session {Session} of the lock {Key} (failure {Failures} in a row); the lock counts as lost in {RemainingMs:0} ms unless a renewal succeeds.")]
    private static partial void LogRenewFailed(ILogger logger, Exception error, string session, string key, int failures, double remainingMs);

    [LoggerMessage(EventId = 4145, Level = LogLevel.Information, Message = "Consul session {Session} of the lock {Key} is gone (invalidated or destroyed); creating another.")]
    private static partial void LogSessionGone(ILogger logger, string session, string key);

    [LoggerMessage(EventId = 4146, Level = LogLevel.Warning, Message = "Consul session {Session} of the lock {Key} was not renewed within its TTL of {TtlSeconds} s; giving it up and creating another once Consul answers.")]
    private static partial void LogSessionExpired(ILogger logger, string session, string key, double ttlSeconds);

    [LoggerMessage(EventId = 4147, Level = LogLevel.Debug, Message = "Consul refused the lock {Key} (another contender was first, or its lock delay runs); trying again in {DelayMs:0} ms.")]
    private static partial void LogAcquireRefused(ILogger logger, string key, double delayMs);

    [LoggerMessage(EventId = 4148, Level = LogLevel.Warning, Message = "Could not acquire the Consul lock {Key}; checking the session and trying again.")]
    private static partial void LogAcquireFailed(ILogger logger, Exception error, string key);

    [LoggerMessage(EventId = 4149, Level = LogLevel.Information, Message = "The Consul lock {Key} is held by {Holder} (index {Index}).")]
    private static partial void LogHolderChanged(ILogger logger, string key, string holder, ulong index);

    [LoggerMessage(EventId = 4150, Level = LogLevel.Information, Message = "Released the Consul lock {Key} (session {Session}).")]
    private static partial void LogReleased(ILogger logger, string key, string session);

    [LoggerMessage(EventId = 4151, Level = LogLevel.Warning, Message = "Could not release the Consul lock {Key} (session {Session}); Consul frees it when the session expires, after a lock delay of {LockDelaySeconds} s.")]
    private static partial void LogReleaseFailed(ILogger logger, Exception error, string key, string session, double lockDelaySeconds);

    [LoggerMessage(EventId = 4152, Level = LogLevel.Debug, Message = "Could not destroy Consul session {Session}; Consul ends it when its TTL passes.")]
    private static partial void LogDestroyFailed(ILogger logger, Exception error, string session);

    [LoggerMessage(EventId = 4153, Level = LogLevel.Information, Message = "Consul session {Session} renewed after {Failures} failed attempts.")]
    private static partial void LogRenewRecovered(ILogger logger, string session, int failures);

    [LoggerMessage(EventId = 4154, Level = LogLevel.Error, Message = "A handler of the Consul lock {Key} threw.")]
    private static partial void LogHandlerFailed(ILogger logger, Exception error, string key);
}
