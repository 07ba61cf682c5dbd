using System.Collections.Concurrent;
using System.Diagnostics;
using MeshKit.Discovery;
using MeshKit.Policy;

namespace MeshKit.Balancing;

/// <summary>
/// What the client has learned about one endpoint of one destination: in-flight requests, peak-EWMA latency, consecutive
/// failures and ejection. Lives in <see cref="EndpointStateRegistry"/>, outside the HttpClientFactory handlers (which are
/// recycled), and is evicted when the endpoint leaves discovery. Updated with interlocked operations only.
/// </summary>
public sealed class EndpointState
{
    private const double DecayTicks = 10.0 * TimeSpan.TicksPerSecond;
    private long _ewmaBits;
    private long _lastSampleTimestamp;
    private int _inFlight;
    private int _consecutiveFailures;
    private int _consecutiveConnectFailures;
    private long _ejectedUntilTimestamp;
    private int _ejections;

    internal EndpointState(string destination, string key)
    {
        Destination = destination;
        Key = key;
    }

    /// <summary>Gets the destination.</summary>
    public string Destination { get; }

    /// <summary>Gets the endpoint's key (address:port).</summary>
    public string Key { get; }

    /// <summary>Gets the requests under way to this endpoint.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Gets the peak-EWMA latency in milliseconds (0 before the first sample).</summary>
    public double LatencyMs => BitConverter.Int64BitsToDouble(Volatile.Read(ref _ewmaBits)) / TimeSpan.TicksPerMillisecond;

    /// <summary>Gets the failures since the last success.</summary>
    public int ConsecutiveFailures => Volatile.Read(ref _consecutiveFailures);

    /// <summary>
    /// Gets the ejection count as of the endpoint's last ejection: one more at each ejection, less one for each
    /// <see cref="OutlierPolicy.BaseEjectionTime"/> the endpoint then stayed back (the decay is applied when it is next
    /// ejected). The n-th ejection in a row lasts n times the base ejection time.
    /// </summary>
    public int Ejections => Volatile.Read(ref _ejections);

    /// <summary>Gets whether the endpoint is ejected at <paramref name="timestamp"/> (a <see cref="Stopwatch"/> timestamp).</summary>
    /// <param name="timestamp">The time.</param>
    /// <returns><see langword="true"/> while ejected.</returns>
    public bool IsEjected(long timestamp) => timestamp < Volatile.Read(ref _ejectedUntilTimestamp);

    /// <summary>Gets when the current ejection ends, as a <see cref="Stopwatch"/> timestamp (0 if never ejected).</summary>
    public long EjectedUntil => Volatile.Read(ref _ejectedUntilTimestamp);

    /// <summary>The score the balancer minimises: latency times load, so a busy or slow endpoint is avoided.</summary>
    /// <remarks>
    /// The latency decays with the time since the last sample, so an endpoint the balancer stopped choosing (a slow or
    /// failing one) is tried again after a while instead of being avoided forever.
    /// </remarks>
    internal double Score
    {
        get
        {
            var ewma = BitConverter.Int64BitsToDouble(Volatile.Read(ref _ewmaBits));
            var last = Volatile.Read(ref _lastSampleTimestamp);
            if (last != 0 && ewma > 0)
            {
                ewma *= Math.Exp(-Stopwatch.GetElapsedTime(last).Ticks / DecayTicks);
            }

            return (ewma + 1) * (InFlight + 1);
        }
    }

    internal void Started() => Interlocked.Increment(ref _inFlight);

    internal void Finished() => Interlocked.Decrement(ref _inFlight);

    /// <summary>Records a latency sample: peak-sensitive (a slower sample takes effect at once), decaying over about 10 s.</summary>
    internal void RecordLatency(TimeSpan latency, long timestamp)
    {
        var sample = (double)latency.Ticks;
        var last = Interlocked.Exchange(ref _lastSampleTimestamp, timestamp);
        while (true)
        {
            var currentBits = Volatile.Read(ref _ewmaBits);
            var current = BitConverter.Int64BitsToDouble(currentBits);
            double next;
            if (current == 0 || sample > current)
            {
                next = sample;
            }
            else
            {
                var elapsed = last == 0 ? 0 : Stopwatch.GetElapsedTime(last, timestamp).Ticks;
                var weight = Math.Exp(-elapsed / DecayTicks);
                next = (current * weight) + (sample * (1 - weight));
            }

            if (Interlocked.CompareExchange(ref _ewmaBits, BitConverter.DoubleToInt64Bits(next), currentBits) == currentBits)
            {
                return;
            }
        }
    }

    internal void RecordSuccess()
    {
        Volatile.Write(ref _consecutiveFailures, 0);
        Volatile.Write(ref _consecutiveConnectFailures, 0);
    }

    internal (int Failures, int ConnectFailures) RecordFailure(bool connectFailure) =>
        (Interlocked.Increment(ref _consecutiveFailures),
         connectFailure ? Interlocked.Increment(ref _consecutiveConnectFailures) : Volatile.Read(ref _consecutiveConnectFailures));

    /// <summary>
    /// Gets the ejection count at <paramref name="timestamp"/>: <see cref="Ejections"/> less one for each whole
    /// <paramref name="decayInterval"/> since the last ejection ended (time spent back in the pool), never below zero.
    /// </summary>
    internal int EjectionsAt(long timestamp, long decayInterval)
    {
        var count = Volatile.Read(ref _ejections);
        var until = Volatile.Read(ref _ejectedUntilTimestamp);
        if (count == 0 || decayInterval <= 0 || timestamp <= until)
        {
            return count;
        }

        var healthyIntervals = (timestamp - until) / decayInterval;
        return healthyIntervals >= count ? 0 : count - (int)healthyIntervals;
    }

    internal void Eject(long until, int ejections)
    {
        Volatile.Write(ref _ejections, ejections);
        Volatile.Write(ref _consecutiveFailures, 0);
        Volatile.Write(ref _consecutiveConnectFailures, 0);
        Volatile.Write(ref _ejectedUntilTimestamp, until);
    }
}

/// <summary>Every <see cref="EndpointState"/>, by destination and endpoint; a singleton that outlives handler recycling.</summary>
public sealed class EndpointStateRegistry
{
    private readonly ConcurrentDictionary<(string Destination, string Endpoint), EndpointState> _states = new();

    internal EndpointStateRegistry(MeshEndpointRegistry endpoints)
    {
        endpoints.EndpointsRemoved += (destination, removed) =>
        {
            foreach (var key in removed)
            {
                _states.TryRemove((destination, key), out _);
            }
        };
    }

    /// <summary>Gets the state of an endpoint, creating it on first use.</summary>
    /// <param name="destination">The destination.</param>
    /// <param name="endpoint">The endpoint key (address:port).</param>
    /// <returns>Its state.</returns>
    public EndpointState Get(string destination, string endpoint) =>
        _states.TryGetValue((destination, endpoint), out var state)
            ? state
            : _states.GetOrAdd((destination, endpoint), static key => new EndpointState(key.Destination, key.Endpoint));

    /// <summary>Gets the state of an endpoint if it has any.</summary>
    /// <param name="destination">The destination.</param>
    /// <param name="endpoint">The endpoint key.</param>
    /// <returns>The state, or <see langword="null"/>.</returns>
    public EndpointState? Find(string destination, string endpoint) =>
        _states.TryGetValue((destination, endpoint), out var state) ? state : null;

    /// <summary>Gets the number of endpoints with state (evicted ones are gone).</summary>
    public int Count => _states.Count;

    /// <summary>Raised after outlier detection ejected an endpoint.</summary>
    public event Action? Ejected;

    /// <summary>Gets the endpoints ejected now, by destination.</summary>
    /// <returns>Destination and endpoint keys, sorted.</returns>
    public IReadOnlyList<(string Destination, string Endpoint)> EjectedNow()
    {
        var now = System.Diagnostics.Stopwatch.GetTimestamp();
        var list = new List<(string, string)>();
        foreach (var (key, state) in _states)
        {
            if (state.IsEjected(now))
            {
                list.Add((key.Destination, key.Endpoint));
            }
        }

        list.Sort();
        return list;
    }

    internal void NotifyEjected() => Ejected?.Invoke();
}
