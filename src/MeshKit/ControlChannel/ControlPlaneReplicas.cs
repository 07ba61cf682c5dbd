using Microsoft.Extensions.Logging;

namespace MeshKit.ControlChannel;

/// <summary>
/// Which control-service replica the workload talks to. It stays with the replica that last answered (the sign calls and
/// the watch go to the same one) and, when that one fails, offers the others in ring order; for <see cref="RecentFailure"/>
/// a replica that answered but could not say what matters (its store has not loaded) comes after them, and one that did
/// not answer at all comes last, the one that failed longest ago first. So a dead replica does not cost every call its
/// timeout again, a degraded one is left while a healthy one exists, and when every replica is degraded the workload stays
/// where it is rather than hop (each hop restarts the watch at index 0, which answers at once). The first choice is drawn
/// at random so that workloads spread over the replicas.
/// </summary>
internal sealed partial class ControlPlaneReplicas
{
    /// <summary>How long a replica that failed is tried after the others.</summary>
    internal static readonly TimeSpan RecentFailure = TimeSpan.FromSeconds(10);

    private readonly IControlPlaneAddresses _addresses;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly Dictionary<Uri, Mark> _marks = [];
    private readonly int _firstDraw;
    private Uri? _preferred;
    private Uri? _lastDegraded;

    public ControlPlaneReplicas(IControlPlaneAddresses addresses, TimeProvider time, MeshRandom random, ILogger logger)
    {
        _addresses = addresses;
        _time = time;
        _logger = logger;
        _firstDraw = random.Next(int.MaxValue);
    }

    /// <summary>Gets the replica in use: the one that answered last, or <see langword="null"/> before any did.</summary>
    public Uri? Current => Volatile.Read(ref _preferred);

    /// <summary>Describes the replicas for messages.</summary>
    /// <returns>The description.</returns>
    public string Describe() => _addresses.Describe();

    /// <summary>Returns the replicas in the order to try them: the one in use, then the others in ring order, recently failed ones last.</summary>
    /// <param name="cancellationToken">Stops waiting for a first address (the Consul add-on waits for Consul's first answer).</param>
    /// <returns>At least one replica.</returns>
    public async ValueTask<IReadOnlyList<Uri>> CandidatesAsync(CancellationToken cancellationToken)
    {
        var known = _addresses.Current;
        if (known.Count == 0)
        {
            known = await _addresses.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        if (known.Count == 1)
        {
            return known;
        }

        var now = _time.GetTimestamp();
        lock (_gate)
        {
            var first = _preferred is { } preferred && IndexOf(known, preferred) is var p and >= 0 ? p : _firstDraw % known.Count;
            var ordered = new List<Uri>(known.Count);
            List<Uri>? degraded = null;
            List<(Uri Replica, long At)>? failed = null;
            for (var i = 0; i < known.Count; i++)
            {
                var replica = known[(first + i) % known.Count];
                if (!_marks.TryGetValue(replica, out var mark) || _time.GetElapsedTime(mark.At, now) >= RecentFailure)
                {
                    ordered.Add(replica);
                }
                else if (mark.Answered)
                {
                    (degraded ??= []).Add(replica);
                }
                else
                {
                    (failed ??= []).Add((replica, mark.At));
                }
            }

            if (degraded is not null)
            {
                ordered.AddRange(degraded);
            }

            if (failed is not null)
            {
                failed.Sort(static (a, b) => a.At.CompareTo(b.At));
                foreach (var (replica, _) in failed)
                {
                    ordered.Add(replica);
                }
            }

            return ordered;
        }
    }

    /// <summary>
    /// The replica answered: it is the one to use from now on. An answer that could not say what matters (<paramref name="degraded"/>:
    /// its store has not loaded) still counts as an answer, but from the next request on another replica is preferred, unless
    /// every other one failed recently too.
    /// </summary>
    /// <param name="replica">The replica.</param>
    /// <param name="degraded">Why the answer was not a full one, or <see langword="null"/> when it was.</param>
    public void Answered(Uri replica, string? degraded = null)
    {
        Uri? previous;
        var logDegraded = false;
        lock (_gate)
        {
            previous = _preferred;
            Volatile.Write(ref _preferred, replica);
            if (degraded is null)
            {
                _marks.Remove(replica);
                if (_lastDegraded == replica)
                {
                    _lastDegraded = null;
                }
            }
            else if (_addresses.Current.Count > 1)
            {
                _marks[replica] = new Mark(_time.GetTimestamp(), Answered: true);
                logDegraded = _lastDegraded != replica;
                _lastDegraded = replica;
            }
        }

        if (previous is not null && previous != replica)
        {
            LogSwitched(_logger, previous, replica);
        }

        if (logDegraded)
        {
            LogReplicaDegraded(_logger, replica, degraded!);
        }
    }

    /// <summary>The replica failed (no connection, a reset, a timeout, a 5xx or an answer it could not give): try the others first for a while.</summary>
    /// <param name="replica">The replica.</param>
    /// <param name="operation">What failed (<c>sign</c>, <c>watch</c>).</param>
    /// <param name="reason">Why, for the log.</param>
    /// <param name="others">Whether another replica is left to try now.</param>
    public void Failed(Uri replica, string operation, string reason, bool others)
    {
        lock (_gate)
        {
            _marks[replica] = new Mark(_time.GetTimestamp(), Answered: false);
        }

        if (others)
        {
            LogReplicaFailed(_logger, operation, replica, reason);
        }
    }

    private static int IndexOf(IReadOnlyList<Uri> list, Uri item)
    {
        for (var i = 0; i < list.Count; i++)
        {
            if (list[i] == item)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>When a replica last failed, and whether it answered (degraded) or not (failed).</summary>
    private readonly record struct Mark(long At, bool Answered);

    [LoggerMessage(EventId = 2121, Level = LogLevel.Warning, Message = "The control-service replica at {Replica} failed the {Operation} request; trying the next replica: {Reason}")]
    private static partial void LogReplicaFailed(ILogger logger, string operation, Uri replica, string reason);

    [LoggerMessage(EventId = 2122, Level = LogLevel.Information, Message = "Now using the control-service replica at {Replica} (was {Previous}).")]
    private static partial void LogSwitched(ILogger logger, Uri previous, Uri replica);

    [LoggerMessage(EventId = 2123, Level = LogLevel.Warning, Message = "The control-service replica at {Replica} answered that {Reason}; preferring another replica.")]
    private static partial void LogReplicaDegraded(ILogger logger, Uri replica, string reason);
}
