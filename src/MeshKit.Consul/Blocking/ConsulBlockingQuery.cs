using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;

namespace MeshKit.Consul;

/// <summary>
/// A Consul blocking query (long poll) that follows Consul's documented rules:
/// <list type="bullet">
/// <item>the first request does not block; later ones send the last <c>X-Consul-Index</c> with <c>wait</c>;</item>
/// <item>an index that goes backwards resets to 0 (the loop starts over);</item>
/// <item>an index of 0 becomes 1, so the next request really blocks;</item>
/// <item>requests start at least <see cref="ConsulOptions.MinimumQueryInterval"/> apart, so an early return with an
/// unchanged index cannot spin;</item>
/// <item>the HTTP timeout is <c>wait + wait/16 + RequestTimeout</c>, longer than Consul's jittered wait;</item>
/// <item>failures are logged and retried after MeshKit's one back-off (<see cref="RetryBackoff"/>: exponential from
/// <see cref="ConsulOptions.RetryBaseDelay"/> with jitter, capped at <see cref="ConsulOptions.RetryMaxDelay"/>); the last
/// known result is kept.</item>
/// </list>
/// A result is produced only when the index changed and the body differs from the last one.
/// </summary>
/// <typeparam name="T">The parsed answer.</typeparam>
public sealed partial class ConsulBlockingQuery<T>
{
    private readonly ConsulClient _client;
    private readonly string _path;
    private readonly string? _query;
    private readonly Func<ConsulResponse, T> _parse;
    private readonly bool _notFoundIsAnswer;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;

    private ulong _index;
    private byte[]? _lastBody;
    private ConsulQueryResult<T>? _lastResult;
    private long _lastSuccessTicks;
    private int _consecutiveFailures;
    private ConsulException? _lastError;
    private long _requestCount;
    private long _notBefore;
    private int _watching;

    internal ConsulBlockingQuery(ConsulClient client, string path, string? query, Func<ConsulResponse, T> parse, bool notFoundIsAnswer, ILogger logger)
    {
        _client = client;
        _path = path;
        _query = query;
        _parse = parse;
        _notFoundIsAnswer = notFoundIsAnswer;
        _logger = logger;
        _time = client.TimeProvider;
        Endpoint = ConsulClient.Endpoint(HttpMethod.Get, path);
    }

    /// <summary>Gets the method and path watched, for example <c>GET /v1/health/service/orders</c>.</summary>
    public string Endpoint { get; }

    /// <summary>Gets the index the next request will wait on (0 before the first answer).</summary>
    public ulong Index => Interlocked.Read(ref _index);

    /// <summary>Gets the last result produced, or <see langword="null"/> before the first answer. Failures keep it.</summary>
    public ConsulQueryResult<T>? LastResult => Volatile.Read(ref _lastResult);

    /// <summary>Gets when the last successful answer arrived (changed or not), or <see langword="null"/> before the first.</summary>
    public DateTimeOffset? LastSuccessAt
    {
        get
        {
            var ticks = Interlocked.Read(ref _lastSuccessTicks);
            return ticks == 0 ? null : new DateTimeOffset(ticks, TimeSpan.Zero);
        }
    }

    /// <summary>Gets how many requests in a row have failed; 0 while the query is healthy.</summary>
    public int ConsecutiveFailures => Volatile.Read(ref _consecutiveFailures);

    /// <summary>Gets the last failure, or <see langword="null"/> when the last request succeeded.</summary>
    public ConsulException? LastError => Volatile.Read(ref _lastError);

    /// <summary>Gets how many requests this query has sent.</summary>
    public long RequestCount => Interlocked.Read(ref _requestCount);

    /// <summary>
    /// Runs the blocking loop and yields each changed result. Failures never end the enumeration: they are logged and
    /// retried with back-off. Enumerate one at a time; a later enumeration continues from the last index.
    /// </summary>
    /// <param name="cancellationToken">Ends the enumeration (and the request in flight).</param>
    /// <returns>The results, each when the index changed and the body differs.</returns>
    /// <exception cref="InvalidOperationException">The query is already being enumerated.</exception>
    public async IAsyncEnumerable<ConsulQueryResult<T>> WatchAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (Interlocked.CompareExchange(ref _watching, 1, 0) != 0)
        {
            throw new InvalidOperationException($"The Consul query {Endpoint} is already being watched; enumerate it once at a time.");
        }

        try
        {
            while (true)
            {
                var result = await NextChangeAsync(cancellationToken).ConfigureAwait(false);
                if (result is null)
                {
                    yield break;
                }

                yield return result;
            }
        }
        finally
        {
            Volatile.Write(ref _watching, 0);
        }
    }

    private async Task<ConsulQueryResult<T>?> NextChangeAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                var wait = _time.GetElapsedTime(_time.GetTimestamp(), Volatile.Read(ref _notBefore));
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, _time, cancellationToken).ConfigureAwait(false);
                }

                var started = _time.GetTimestamp();
                Volatile.Write(ref _notBefore, started + (long)(_client.Settings.MinimumQueryInterval.TotalSeconds * _time.TimestampFrequency));
                Interlocked.Increment(ref _requestCount);
                var index = Index;
                var response = await _client.QueryAsync(_path, _query, index, _notFoundIsAnswer, cancellationToken).ConfigureAwait(false);
                var result = Accept(response, index);
                if (result is not null)
                {
                    return result;
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return null;
            }
            catch (ConsulException ex)
            {
                OnFailure(ex);
            }
        }
    }

    /// <summary>Applies Consul's index rules to an answer and returns a result when it carries a change.</summary>
    private ConsulQueryResult<T>? Accept(ConsulResponse response, ulong sent)
    {
        var received = response.Meta.Index;
        var first = Volatile.Read(ref _lastResult) is null;
        var changed = first || received != sent;
        var sameBody = !first && response.Body.AsSpan().SequenceEqual(_lastBody);

        // Parse before any state changes: a malformed answer must count as a failure and leave the index alone,
        // so that the next good answer is not mistaken for "nothing new".
        var value = changed && !sameBody ? Parse(response) : default;

        ulong next;
        if (received == 0)
        {
            // Consul documents 1 as always safe; 0 would make the next request return at once, again and again.
            LogIndexZero(_logger, Endpoint);
            next = 1;
        }
        else if (received < sent)
        {
            // Restart the loop: index 0 asks without blocking, and an index of 0 or less is always sent as 1.
            LogIndexWentBackwards(_logger, Endpoint, sent, received);
            next = 1;
        }
        else
        {
            next = received;
        }

        Interlocked.Exchange(ref _index, next);
        Interlocked.Exchange(ref _lastSuccessTicks, response.ReceivedAt.UtcTicks);
        Volatile.Write(ref _lastError, null);
        var failures = Interlocked.Exchange(ref _consecutiveFailures, 0);
        if (failures > 0)
        {
            LogRecovered(_logger, Endpoint, failures);
        }

        if (!changed || sameBody)
        {
            return null;
        }

        _lastBody = response.Body;
        var result = new ConsulQueryResult<T>(value!, response.Meta, response.ReceivedAt);
        Volatile.Write(ref _lastResult, result);
        LogChanged(_logger, Endpoint, received);
        return result;
    }

    private T Parse(ConsulResponse response)
    {
        try
        {
            return _parse(response);
        }
        catch (ConsulException)
        {
            throw;
        }
        catch (Exception ex) when (ex is NotSupportedException or InvalidOperationException or FormatException or OverflowException or ArgumentException)
        {
            throw new ConsulException(Endpoint, ConsulErrorKind.MalformedResponse, response.StatusCode, $"Consul {Endpoint} answered {(int)response.StatusCode} with a body that could not be read ({ex.Message}).", ex);
        }
    }

    private void OnFailure(ConsulException error)
    {
        var failures = Interlocked.Increment(ref _consecutiveFailures);
        Volatile.Write(ref _lastError, error);
        var delay = RetryBackoff.Next(failures - 1, _client.Settings.RetryBaseDelay, _client.Settings.RetryMaxDelay);
        Volatile.Write(ref _notBefore, _time.GetTimestamp() + (long)(delay.TotalSeconds * _time.TimestampFrequency));
        var lastSuccess = LastSuccessAt;
        LogFailed(
            _logger,
            error,
            Endpoint,
            error.Kind,
            error.StatusCode is { } status ? (int)status : 0,
            failures,
            delay.TotalMilliseconds,
            lastSuccess is { } at ? at.ToString("O", System.Globalization.CultureInfo.InvariantCulture) : "never");
    }

    [LoggerMessage(EventId = 4110, Level = LogLevel.Warning, Message = "Consul query {Endpoint} failed ({Kind}, status {StatusCode}); keeping the last known result (last success {LastSuccess}) and retrying in {DelayMs:0} ms (failure {Failures} in a row).")]
    private static partial void LogFailed(ILogger logger, Exception error, string endpoint, ConsulErrorKind kind, int statusCode, int failures, double delayMs, string lastSuccess);

    [LoggerMessage(EventId = 4111, Level = LogLevel.Information, Message = "Consul query {Endpoint} answered after {Failures} failed attempts.")]
    private static partial void LogRecovered(ILogger logger, string endpoint, int failures);

    [LoggerMessage(EventId = 4112, Level = LogLevel.Information, Message = "Consul query {Endpoint}: the index went backwards from {Previous} to {Current}; restarting the blocking loop from index 0.")]
    private static partial void LogIndexWentBackwards(ILogger logger, string endpoint, ulong previous, ulong current);

    [LoggerMessage(EventId = 4114, Level = LogLevel.Debug, Message = "Consul query {Endpoint} answered index 0; waiting on index 1 instead.")]
    private static partial void LogIndexZero(ILogger logger, string endpoint);

    [LoggerMessage(EventId = 4113, Level = LogLevel.Debug, Message = "Consul query {Endpoint} changed at index {Index}.")]
    private static partial void LogChanged(ILogger logger, string endpoint, ulong index);
}
