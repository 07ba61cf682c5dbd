namespace MeshKit.Resilience;

/// <summary>
/// Limits retries to a share of requests over a sliding window, with the semantics of Microsoft.Extensions.Http.Resilience's
/// <c>HttpRetryBudgetOptions</c>: below <c>MinimumThroughput</c> requests in the window retries are not limited (unless the
/// ratio is 0); above it a retry is allowed while the retries in the window are below <c>RetryRatio</c> × requests.
/// </summary>
/// <remarks>
/// MeshKit's own because the library's budget lives inside its retry strategy and counts only the requests that enter that
/// strategy, while MeshKit's first attempt enters no strategy at all (it would cost every call a Polly execution; see
/// docs/benchmarks.md). Counting a request is one interlocked increment; the window is <see cref="Buckets"/> buckets, and
/// a bucket is cleared (under a lock, once per bucket length) when the window moves past it.
/// </remarks>
internal sealed class RetryBudget
{
    private const int Buckets = 10;
    private readonly double _ratio;
    private readonly int _minimumThroughput;
    private readonly long _bucketLength;
    private readonly TimeProvider _time;
    private readonly long[] _epochs = new long[Buckets];
    private readonly long[] _requests = new long[Buckets];
    private readonly long[] _retries = new long[Buckets];
    private readonly Lock _rollover = new();

    public RetryBudget(double ratio, int minimumThroughput, TimeSpan window, TimeProvider time)
    {
        _ratio = ratio;
        _minimumThroughput = minimumThroughput;
        _time = time;
        _bucketLength = Math.Max(1, (long)(window.TotalSeconds * time.TimestampFrequency / Buckets));
        Array.Fill(_epochs, long.MinValue);
    }

    /// <summary>Counts a request (each call, once).</summary>
    public void RecordRequest() => Interlocked.Increment(ref _requests[Current(_time.GetTimestamp())]);

    /// <summary>Takes a retry from the budget; <see langword="false"/> when the budget is spent.</summary>
    public bool TryWithdraw()
    {
        if (_ratio <= 0)
        {
            return false;
        }

        var now = _time.GetTimestamp();
        var current = Current(now);
        var epoch = now / _bucketLength;
        long requests = 0;
        long retries = 0;
        for (var i = 0; i < Buckets; i++)
        {
            // Only buckets inside the window count; a stale one is cleared when it is next written.
            if (epoch - Volatile.Read(ref _epochs[i]) < Buckets)
            {
                requests += Interlocked.Read(ref _requests[i]);
                retries += Interlocked.Read(ref _retries[i]);
            }
        }

        if (requests >= _minimumThroughput && retries >= _ratio * requests)
        {
            return false;
        }

        Interlocked.Increment(ref _retries[current]);
        return true;
    }

    private int Current(long now)
    {
        var epoch = now / _bucketLength;
        var index = (int)(epoch % Buckets);
        if (Volatile.Read(ref _epochs[index]) != epoch)
        {
            lock (_rollover)
            {
                if (_epochs[index] != epoch)
                {
                    Interlocked.Exchange(ref _requests[index], 0);
                    Interlocked.Exchange(ref _retries[index], 0);
                    Volatile.Write(ref _epochs[index], epoch);
                }
            }
        }

        return index;
    }
}
