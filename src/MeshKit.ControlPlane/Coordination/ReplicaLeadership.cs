using System.Security.Cryptography;
using MeshKit.Consul;
using MeshKit.ControlPlane.Replicas;
using MeshKit.ControlPlane.Storage;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;

namespace MeshKit.ControlPlane.Coordination;

/// <summary>
/// Which replica does the steps one replica must do alone (CA rotation steps now; per-replica intermediates, pruning
/// and canary analysis later). With a shared store in Consul (<c>ControlPlane:Consul:Address</c>) every replica
/// competes for the session lock on <c>&lt;KeyPrefix&gt;leader</c> (<see cref="ConsulLock"/>) once it listens, writing
/// its <see cref="ReplicaRecord"/> into the key; the others follow the key with a blocking query and know who leads. A
/// leader that loses the lock (its session invalidated, no renewal for a whole <c>LockTtl</c>, the key taken, the
/// replica stopping) stops its leader-only steps at once: <see cref="LeaderToken"/> is cancelled. A stopping leader
/// releases the key so another replica takes over at once; a crashed one is replaced after its session ends plus the
/// lock delay. Without Consul there is one replica, and it always leads.
/// <para>
/// Use <see cref="RunAsLeaderAsync"/> for a step that takes time (it is cancelled when leadership ends), and
/// <see cref="CheckLeader"/> for one that is instantaneous; both refuse, and log, on a follower.
/// </para>
/// </summary>
internal sealed partial class ReplicaLeadership : IHostedLifecycleService, IAsyncDisposable
{
    private static readonly CancellationToken Cancelled = new(canceled: true);

    private readonly SharedConsul _shared;
    private readonly ControlPlaneOptions _options;
    private readonly IServer _server;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly DateTimeOffset _createdAt;
    private ConsulLock? _lock;
    private ReplicaRecord _self;

    public ReplicaLeadership(SharedConsul shared, IOptions<ControlPlaneOptions> options, IServer server, ILoggerFactory loggers, TimeProvider time)
    {
        _shared = shared;
        _options = options.Value;
        _server = server;
        _loggers = loggers;
        _logger = loggers.CreateLogger<ReplicaLeadership>();
        _time = time;
        _createdAt = time.GetUtcNow();
        ReplicaId = $"{Environment.MachineName.ToLowerInvariant()}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}";
        _self = new ReplicaRecord(ReplicaId, null);
    }

    /// <summary>Raised when this replica gains or loses leadership, or learns of another leader.</summary>
    public event Action? Changed;

    /// <summary>Gets this replica's ID, unique per process: <c>&lt;machine&gt;-&lt;8 hex digits&gt;</c>.</summary>
    public string ReplicaId { get; }

    /// <summary>Gets this replica: its ID and, once it listens, its address.</summary>
    public ReplicaRecord Self => Volatile.Read(ref _self);

    /// <summary>Gets a value indicating whether replicas elect a leader in Consul; without Consul this replica always leads.</summary>
    public bool Elected => _shared.Client is not null;

    /// <summary>Gets the Consul key competed for, or <see langword="null"/> without Consul.</summary>
    public string? Key => Elected ? _shared.LeaderKey : null;

    /// <summary>Gets the session TTL of the leader lock.</summary>
    public TimeSpan LockTtl => _options.Consul.LockTtl;

    /// <summary>Gets the lock delay of the leader lock.</summary>
    public TimeSpan LockDelay => _options.Consul.LockDelay;

    /// <summary>Gets a value indicating whether this replica leads now.</summary>
    public bool IsLeader => !Elected || (_lock?.IsHeld ?? false);

    /// <summary>Gets since when this replica leads, or <see langword="null"/> while it does not.</summary>
    public DateTimeOffset? LeaderSince => !Elected ? _createdAt : _lock?.HeldSince;

    /// <summary>Gets the Consul session with which this replica competes, or <see langword="null"/>.</summary>
    public string? SessionId => _lock?.SessionId;

    /// <summary>
    /// Gets the replica that leads as this replica knows it: itself when it leads, the replica named in the key while
    /// another session holds it, <see langword="null"/> while nobody does (an election under way, Consul unreachable) or
    /// the key holds something else.
    /// </summary>
    public ReplicaRecord? Leader
    {
        get
        {
            if (IsLeader)
            {
                return Self;
            }

            // The key may still name this replica after it gave its session up (Consul unreachable): it knows it does not lead.
            return _lock?.Observed is { Session.Length: > 0 } held && ReplicaRecord.TryParse(held.Value) is { } record && record.Replica != ReplicaId
                ? record
                : null;
        }
    }

    /// <summary>
    /// Gets a token cancelled the moment this replica stops leading; already cancelled on a follower; never cancelled
    /// without Consul. Take it before a leader-only step and pass it on.
    /// </summary>
    public CancellationToken LeaderToken => !Elected ? CancellationToken.None : _lock?.HeldToken ?? Cancelled;

    /// <summary>
    /// Checks that this replica leads before an instantaneous leader-only step.
    /// </summary>
    /// <param name="step">The step, in words, for the refusal and the log (<c>CA rotation: add a root</c>).</param>
    /// <returns><see langword="null"/> when this replica leads; otherwise why not, naming the leader when one is known.</returns>
    public LeaderRefusal? CheckLeader(string step)
    {
        if (IsLeader)
        {
            return null;
        }

        var leader = Leader;
        LogStepRefused(_logger, step, Self.ToString(), leader?.ToString() ?? "nobody");
        return leader is null
            ? new LeaderRefusal(StatusCodes.Status503ServiceUnavailable, "leader-unknown", $"'{step}' runs on the leading replica only, and no replica leads right now (an election is under way, or Consul is unreachable); try again in a few seconds.", null)
            : new LeaderRefusal(StatusCodes.Status409Conflict, "not-leader", $"'{step}' runs on the leading replica only: this replica ({Self}) does not lead; send it to {leader}.", leader);
    }

    /// <summary>
    /// Runs a leader-only step that takes time: refused on a follower; cancelled (through the token it receives) the
    /// moment this replica stops leading.
    /// </summary>
    /// <param name="step">The step, in words, for the refusal and the log.</param>
    /// <param name="work">The step; it must honour its token.</param>
    /// <param name="cancellationToken">Cancels the step for another reason (the request aborted).</param>
    /// <returns><see langword="null"/> when the step ran to its end; otherwise why it did not run or was stopped.</returns>
    public async Task<LeaderRefusal?> RunAsLeaderAsync(string step, Func<CancellationToken, Task> work, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(work);

        // The token first: leadership lost after this point cancels it, so the step never runs unguarded.
        var leader = LeaderToken;
        if (CheckLeader(step) is { } refusal)
        {
            return refusal;
        }

        if (leader.IsCancellationRequested)
        {
            return Interrupted(step);
        }

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(leader, cancellationToken);
        try
        {
            await work(linked.Token).ConfigureAwait(false);
            return null;
        }
        catch (OperationCanceledException) when (leader.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return Interrupted(step);
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Once the server listens (its address goes into the key), starts competing for the leader key.</summary>
    public async Task StartedAsync(CancellationToken cancellationToken)
    {
        Volatile.Write(ref _self, new ReplicaRecord(ReplicaId, AdvertisedAddress()));
        if (_shared.Client is not { } client)
        {
            LogSingleReplica(_logger, Self.ToString());
            return;
        }

        var consulLock = new ConsulLock(client, new ConsulLockOptions
        {
            Key = _shared.LeaderKey,
            Value = Self.ToJson(),
            Ttl = _options.Consul.LockTtl,
            LockDelay = _options.Consul.LockDelay,
            SessionName = "MeshKit control service " + ReplicaId,
        }, _loggers.CreateLogger<ConsulLock>());
        consulLock.Acquired += (_, _) =>
        {
            LogLeading(_logger, Self.ToString(), _shared.LeaderKey);
            Changed?.Invoke();
        };
        consulLock.Lost += (_, e) =>
        {
            LogLeadershipLost(_logger, Self.ToString(), e.Reason, e.Detail);
            Changed?.Invoke();
        };
        consulLock.HolderChanged += (_, _) =>
        {
            if (!consulLock.IsHeld)
            {
                LogLeaderIs(_logger, Leader?.ToString() ?? "no replica", _shared.LeaderKey);
            }

            Changed?.Invoke();
        };
        _lock = consulLock;
        LogCompeting(_logger, Self.ToString(), _shared.LeaderKey, _options.Consul.LockTtl.TotalSeconds, _options.Consul.LockDelay.TotalSeconds);
        await consulLock.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Before the server stops: leader-only steps stop, and the key is released so another replica leads at once.</summary>
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        if (_lock is { } consulLock)
        {
            await consulLock.StopAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        if (_lock is { } consulLock)
        {
            await consulLock.DisposeAsync().ConfigureAwait(false);
        }
    }

    private LeaderRefusal Interrupted(string step)
    {
        LogStepInterrupted(_logger, step, Self.ToString());
        return new LeaderRefusal(StatusCodes.Status503ServiceUnavailable, "leadership-lost", $"'{step}' was stopped: this replica ({Self}) stopped leading while it ran; check the state and repeat it on the leading replica.", null);
    }

    /// <summary>Where workloads reach this replica (the same rule as its Consul registration: <see cref="AdvertisedEndpoint"/>).</summary>
    private Uri? AdvertisedAddress() => AdvertisedEndpoint.TryFrom(_server, out var bound) ? bound.Url(_options) : null;

    [LoggerMessage(EventId = 1301, Level = LogLevel.Information, Message = "Replica {Replica} leads the control service's replicas (Consul lock {Key}); leader-only steps run here.")]
    private static partial void LogLeading(ILogger logger, string replica, string key);

    [LoggerMessage(EventId = 1302, Level = LogLevel.Warning, Message = "Replica {Replica} no longer leads ({Reason}: {Detail}); its leader-only steps stopped.")]
    private static partial void LogLeadershipLost(ILogger logger, string replica, ConsulLockLossReason reason, string detail);

    [LoggerMessage(EventId = 1303, Level = LogLevel.Information, Message = "Leader of the control service's replicas: {Leader} (Consul lock {Key}).")]
    private static partial void LogLeaderIs(ILogger logger, string leader, string key);

    [LoggerMessage(EventId = 1304, Level = LogLevel.Warning, Message = "Refused '{Step}' on replica {Replica}: it runs on the leading replica only (leader: {Leader}).")]
    private static partial void LogStepRefused(ILogger logger, string step, string replica, string leader);

    [LoggerMessage(EventId = 1305, Level = LogLevel.Warning, Message = "Stopped '{Step}' on replica {Replica}: it stopped leading while the step ran.")]
    private static partial void LogStepInterrupted(ILogger logger, string step, string replica);

    [LoggerMessage(EventId = 1306, Level = LogLevel.Information, Message = "Replica {Replica} competes for the leader lock {Key} in Consul (session TTL {TtlSeconds} s, lock delay {LockDelaySeconds} s).")]
    private static partial void LogCompeting(ILogger logger, string replica, string key, double ttlSeconds, double lockDelaySeconds);

    [LoggerMessage(EventId = 1307, Level = LogLevel.Information, Message = "Replica {Replica} runs alone (no ControlPlane:Consul:Address) and leads.")]
    private static partial void LogSingleReplica(ILogger logger, string replica);
}

/// <summary>Why a leader-only step did not run (or was stopped): the status and reason of the admin API's refusal, and the leader if known.</summary>
/// <param name="Status">The HTTP status: 409 on a follower that knows the leader, 503 when no leader is known or leadership ended mid-step.</param>
/// <param name="Reason">The machine-readable reason: <c>not-leader</c>, <c>leader-unknown</c>, <c>leadership-lost</c>.</param>
/// <param name="Detail">What happened and what to do, naming the leader when known.</param>
/// <param name="Leader">The leading replica, when known.</param>
internal sealed record LeaderRefusal(int Status, string Reason, string Detail, ReplicaRecord? Leader)
{
    /// <summary>The refusal as problem+json; a known leader is in <c>leader</c> (<c>{ replica, address }</c>).</summary>
    public IResult ToResult() =>
        Problems.Refuse(Status, Reason, Detail, Leader is null ? null : [new("leader", Leader)]);
}
