using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;

namespace MeshKit.Consul;

/// <summary>
/// The watch of one service: its last known passing instances, a change token, and how fresh they are.
/// Owned by <see cref="ConsulServiceWatcher"/>; reading it takes no lock and allocates nothing.
/// </summary>
public sealed class ConsulWatchedService
{
    private readonly TaskCompletionSource<ConsulServiceSet> _first = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TimeProvider _time;
    private Generation _generation = new(null);
    private long _startedAtTicks;
    private int _started;

    internal ConsulWatchedService(string serviceName, ConsulClient client)
    {
        ServiceName = serviceName;
        _time = client.TimeProvider;
        Query = client.CreateHealthServiceQuery(serviceName, ConsulHealthQuery.Passing);
    }

    /// <summary>Gets the service name.</summary>
    public string ServiceName { get; }

    /// <summary>
    /// Gets the last known passing instances, or <see langword="null"/> before Consul first answered. While Consul is
    /// unreachable this keeps the last answer (see <see cref="Staleness"/>).
    /// </summary>
    public ConsulServiceSet? Current => Volatile.Read(ref _generation).Set;

    /// <summary>Gets when Consul last answered this watch (changed or not), or <see langword="null"/> if it never has.</summary>
    public DateTimeOffset? LastSuccessAt => Query.LastSuccessAt;

    /// <summary>Gets how many requests in a row have failed; 0 while Consul answers.</summary>
    public int ConsecutiveFailures => Query.ConsecutiveFailures;

    /// <summary>Gets the last failure, or <see langword="null"/> while Consul answers.</summary>
    public ConsulException? LastError => Query.LastError;

    /// <summary>
    /// Gets how long <see cref="Current"/> may have been out of date: zero while the blocking query is healthy, otherwise
    /// the time since Consul last answered (or since the watch started, if it never answered). Feed it to a staleness metric.
    /// </summary>
    public TimeSpan Staleness
    {
        get
        {
            var lastSuccess = LastSuccessAt;
            if (ConsecutiveFailures == 0 && lastSuccess is not null)
            {
                return TimeSpan.Zero;
            }

            var since = lastSuccess ?? new DateTimeOffset(Interlocked.Read(ref _startedAtTicks), TimeSpan.Zero);
            var staleness = _time.GetUtcNow() - since;
            return staleness > TimeSpan.Zero ? staleness : TimeSpan.Zero;
        }
    }

    internal ConsulBlockingQuery<IReadOnlyList<ConsulServiceEntry>> Query { get; }

    internal Task Completion { get; private set; } = Task.CompletedTask;

    /// <summary>Gets a token that fires the next time <see cref="Current"/> changes.</summary>
    /// <returns>A change token; fetch a new one after it fires.</returns>
    public IChangeToken GetChangeToken() => Volatile.Read(ref _generation).Token;

    /// <summary>Returns the current instances, waiting for Consul's first answer if there is none yet.</summary>
    /// <param name="cancellationToken">Stops waiting (use it for a timeout).</param>
    /// <returns>The last known passing instances.</returns>
    public Task<ConsulServiceSet> WaitForInstancesAsync(CancellationToken cancellationToken = default) =>
        Current is { } set ? Task.FromResult(set) : _first.Task.WaitAsync(cancellationToken);

    internal bool TryStart(ConsulServiceWatcher owner)
    {
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            return false;
        }

        Interlocked.Exchange(ref _startedAtTicks, _time.GetUtcNow().UtcTicks);
        Completion = owner.RunAsync(this);
        return true;
    }

    internal void Publish(ConsulServiceSet set, ILogger logger)
    {
        var previous = Interlocked.Exchange(ref _generation, new Generation(set));
        _first.TrySetResult(set);
        try
        {
            previous.Source.Cancel();
        }
        catch (AggregateException ex)
        {
            ConsulServiceWatcher.LogCallbackFailed(logger, ex, ServiceName);
        }
    }

    /// <summary>One published set with the token that fires when it is replaced; swapped as a whole.</summary>
    private sealed class Generation
    {
        public Generation(ConsulServiceSet? set)
        {
            Set = set;
            Source = new CancellationTokenSource();
            Token = new CancellationChangeToken(Source.Token);
        }

        public ConsulServiceSet? Set { get; }

        public CancellationTokenSource Source { get; }

        public IChangeToken Token { get; }
    }
}
