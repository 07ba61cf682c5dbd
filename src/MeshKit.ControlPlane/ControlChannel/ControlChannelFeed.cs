namespace MeshKit.ControlPlane.ControlChannel;

/// <summary>
/// The index of everything the control channel carries (trust bundle, revocations, policy). Every change raises the
/// index and wakes every waiting watch at once; a watch with an up-to-date index waits until the next change or its wait.
/// </summary>
internal sealed class ControlChannelFeed
{
    private readonly Lock _gate = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Start from a time-based index so that a restarted control service does not hand out indexes a workload already has.
    private long _index = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    public long Index => Interlocked.Read(ref _index);

    public void Publish()
    {
        TaskCompletionSource changed;
        lock (_gate)
        {
            _index++;
            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        changed.TrySetResult();
    }

    /// <summary>Waits until the index passes <paramref name="index"/> or <paramref name="wait"/> elapses.</summary>
    public async Task WaitAsync(long index, TimeSpan wait, TimeProvider time, CancellationToken cancellationToken)
    {
        Task changed;
        lock (_gate)
        {
            if (index <= 0 || index != _index)
            {
                // Consul's rules: index 0, or any index other than the current one, answers at once.
                return;
            }

            changed = _changed.Task;
        }

        try
        {
            await changed.WaitAsync(wait, time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
    }
}
