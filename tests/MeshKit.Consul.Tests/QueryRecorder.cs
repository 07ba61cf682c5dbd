using System.Collections.Concurrent;
using MeshKit.Testing;

namespace MeshKit.Consul.Tests;

/// <summary>Runs a blocking query in the background and keeps what it yields, for assertions with a deadline.</summary>
public sealed class QueryRecorder<T> : IAsyncDisposable
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<ConsulQueryResult<T>> _results = new();
    private readonly Task _loop;

    public QueryRecorder(ConsulBlockingQuery<T> query)
    {
        Query = query;
        _loop = Task.Run(async () =>
        {
            await foreach (var result in query.WatchAsync(_stop.Token))
            {
                _results.Enqueue(result);
            }
        });
    }

    public ConsulBlockingQuery<T> Query { get; }

    public IReadOnlyList<ConsulQueryResult<T>> Results => [.. _results];

    public ConsulQueryResult<T>? Latest => _results.LastOrDefault();

    /// <summary>Gets the loop's failure, if it ever ended other than by cancellation; the loop must never crash.</summary>
    public Exception? Failure => _loop.IsFaulted ? _loop.Exception : null;

    public Task WaitForAsync(Func<T, bool> condition, string what) =>
        Eventually.WaitAsync(() => Latest is { } latest && condition(latest.Value), Deadline, what);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _loop;
        }
        catch (OperationCanceledException)
        {
        }

        _stop.Dispose();
    }
}
