using System.Collections.Concurrent;
using MeshKit.Discovery;
using MeshKit.Policy;

namespace MeshKit.Balancing;

/// <summary>
/// What the client has learned about one endpoint of one destination: in-flight requests, peak-EWMA latency, consecutive
/// failures and ejection. Lives in <see cref="EndpointStateRegistry"/>, outside the HttpClientFactory handlers (which are
/// recycled), and is evicted when the endpoint leaves discovery. Updated with interlocked operations only. Its timestamps
/// are those of <see cref="EndpointStateRegistry.Time"/> (the mesh's <see cref="TimeProvider"/>).
/// </summary>
internal sealed class EndpointState
{
    private const double DecaySeconds = 10.0;

    // The peak-EWMA decay constant in timestamp units: 10 s of the registry's clock.
    private readonly double _decayTimestamps;
    private long _ewmaBits;
    private long _lastSampleTimestamp;
    private int _inFlight;
    private int _consecutiveFailures;
    private int _consecutiveConnectFailures;
    private long _ejectedUntilTimestamp;
    private int _ejections;

    internal EndpointState(string destination, string key, long timestampFrequency)
    {
        Destination = destination;
        Key = key;
        _decayTimestamps = DecaySeconds * timestampFrequency;
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

    /// <summary>Gets whether the endpoint is ejected at <paramref name="timestamp"/> (a timestamp of <see cref="EndpointStateRegistry.Time"/>).</summary>
    /// <param name="timestamp">The time.</param>
    /// <returns><see langword="true"/> while ejected.</returns>
    public bool IsEjected(long timestamp) => timestamp < Volatile.Read(ref _ejectedUntilTimestamp);

    /// <summary>Gets when the current ejection ends, as a timestamp of <see cref="EndpointStateRegistry.Time"/> (0 if never ejected).</summary>
    public long EjectedUntil => Volatile.Read(ref _ejectedUntilTimestamp);

    /// <summary>The score the balancer minimises at <paramref name="now"/>: latency times load, so a busy or slow endpoint is avoided.</summary>
    /// <remarks>
    /// The latency decays with the time since the last sample, so an endpoint the balancer stopped choosing (a slow or
    /// failing one) is tried again after a while instead of being avoided forever.
    /// </remarks>
    internal double ScoreAt(long now)
    {
        var ewma = BitConverter.Int64BitsToDouble(Volatile.Read(ref _ewmaBits));
        var last = Volatile.Read(ref _lastSampleTimestamp);

        // A sample recorded after `now` was read (another attempt finishing) counts as fresh, not as from the future.
        if (last != 0 && ewma > 0 && now > last)
        {
            ewma *= Math.Exp(-(now - last) / _decayTimestamps);
        }

        return (ewma + 1) * (InFlight + 1);
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
                var elapsed = last == 0 ? 0 : timestamp - last;
                var weight = Math.Exp(-elapsed / _decayTimestamps);
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

/// <summary>
/// Every <see cref="EndpointState"/>, by destination and endpoint; a singleton that outlives handler recycling. Holds the
/// clock every endpoint-state timestamp is read from (ejection, latency samples, decay).
/// </summary>
internal sealed class EndpointStateRegistry
{
    private readonly ConcurrentDictionary<(string Destination, string Endpoint), EndpointState> _states = new();
    private readonly Func<(string Destination, string Endpoint), EndpointState> _create;

    internal EndpointStateRegistry(MeshEndpointRegistry endpoints, TimeProvider time)
    {
        Time = time;
        var frequency = time.TimestampFrequency;
        _create = key => new EndpointState(key.Destination, key.Endpoint, frequency);
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
            : _states.GetOrAdd((destination, endpoint), _create);

    /// <summary>Gets the state of an endpoint if it has any.</summary>
    /// <param name="destination">The destination.</param>
    /// <param name="endpoint">The endpoint key.</param>
    /// <returns>The state, or <see langword="null"/>.</returns>
    public EndpointState? Find(string destination, string endpoint) =>
        _states.TryGetValue((destination, endpoint), out var state) ? state : null;

    /// <summary>Gets the clock of endpoint state: the mesh's <see cref="TimeProvider"/>, a fake one in tests.</summary>
    internal TimeProvider Time { get; }

    /// <summary>Gets the current timestamp of <see cref="Time"/>.</summary>
    internal long Now => Time.GetTimestamp();

    /// <summary>Converts a duration to timestamp units of <see cref="Time"/>.</summary>
    internal long ToTimestamp(TimeSpan duration) => (long)(duration.TotalSeconds * Time.TimestampFrequency);

    /// <summary>Gets the number of endpoints with state (evicted ones are gone).</summary>
    public int Count => _states.Count;

    /// <summary>Raised after outlier detection ejected an endpoint.</summary>
    public event Action? Ejected;

    /// <summary>Gets the endpoints ejected now, by destination.</summary>
    /// <returns>Destination and endpoint keys, sorted.</returns>
    public IReadOnlyList<(string Destination, string Endpoint)> EjectedNow()
    {
        var now = Now;
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
