using System.Diagnostics;

namespace MeshKit.Testing;

/// <summary>Waits on a condition with a deadline instead of sleeping a fixed time.</summary>
public static class Eventually
{
    /// <summary>Polls <paramref name="condition"/> until it holds or <paramref name="timeout"/> passes.</summary>
    /// <returns>Completes when the condition holds; throws <see cref="TimeoutException"/> naming <paramref name="what"/> otherwise.</returns>
    public static async Task WaitAsync(Func<bool> condition, TimeSpan timeout, string what, TimeSpan? interval = null)
    {
        await WaitAsync(() => Task.FromResult(condition()), timeout, what, interval).ConfigureAwait(false);
    }

    /// <summary>Polls an async <paramref name="condition"/> until it holds or <paramref name="timeout"/> passes.</summary>
    public static async Task WaitAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, TimeSpan? interval = null)
    {
        var stopwatch = Stopwatch.StartNew();
        var delay = interval ?? TimeSpan.FromMilliseconds(20);
        while (true)
        {
            if (await condition().ConfigureAwait(false))
            {
                return;
            }

            if (stopwatch.Elapsed > timeout)
            {
                throw new TimeoutException($"Waited {timeout.TotalSeconds:0.#} s for {what}.");
            }

            await Task.Delay(delay).ConfigureAwait(false);
        }
    }
}
