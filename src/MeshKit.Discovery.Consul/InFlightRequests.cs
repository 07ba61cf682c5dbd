using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace MeshKit.Discovery;

/// <summary>
/// Counts the requests this server is handling, so a graceful stop can wait for them after it has left discovery and
/// before Kestrel closes connections. Two interlocked operations per request; no lock, and no allocation when the
/// app completes synchronously.
/// </summary>
internal sealed class InFlightRequests
{
    private long _count;
    private int _draining;
    private TaskCompletionSource? _drained;

    /// <summary>Gets the number of requests being handled.</summary>
    public long Count => Interlocked.Read(ref _count);

    public void Enter() => Interlocked.Increment(ref _count);

    public void Exit()
    {
        // Both sides use full fences (Interlocked), so either this sees the drain flag or the drain sees the zero.
        if (Interlocked.Decrement(ref _count) == 0 && Volatile.Read(ref _draining) != 0)
        {
            Volatile.Read(ref _drained)?.TrySetResult();
        }
    }

    /// <summary>Waits until no request is in flight, or <paramref name="timeout"/> passes.</summary>
    /// <returns><see langword="true"/> when every request finished in time.</returns>
    public async Task<bool> WaitForNoneAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        Volatile.Write(ref _drained, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        Interlocked.Exchange(ref _draining, 1);
        if (Interlocked.Read(ref _count) <= 0)
        {
            return true;
        }

        try
        {
            await _drained!.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }
}

/// <summary>Counts each request in <see cref="InFlightRequests"/>; first in the pipeline.</summary>
internal sealed class InFlightRequestsMiddleware(RequestDelegate next, InFlightRequests inFlight)
{
    public Task InvokeAsync(HttpContext context)
    {
        inFlight.Enter();
        Task task;
        try
        {
            task = next(context);
        }
        catch
        {
            inFlight.Exit();
            throw;
        }

        if (task.IsCompleted)
        {
            inFlight.Exit();
            return task;
        }

        return AwaitAsync(task);
    }

    private async Task AwaitAsync(Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        finally
        {
            inFlight.Exit();
        }
    }
}

/// <summary>Puts <see cref="InFlightRequestsMiddleware"/> in front of the app's pipeline.</summary>
internal sealed class InFlightRequestsStartupFilter : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.UseMiddleware<InFlightRequestsMiddleware>();
        next(app);
    };
}
