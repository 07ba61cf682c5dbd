namespace MeshKit.Consul;

/// <summary>Describes the loss of a <see cref="ConsulLock"/>.</summary>
public sealed class ConsulLockLostEventArgs : EventArgs
{
    /// <summary>Initializes a new instance.</summary>
    /// <param name="reason">Why the lock was lost.</param>
    /// <param name="detail">What happened, in words, for logs.</param>
    public ConsulLockLostEventArgs(ConsulLockLossReason reason, string detail)
    {
        Reason = reason;
        Detail = detail ?? string.Empty;
    }

    /// <summary>Gets why the lock was lost.</summary>
    public ConsulLockLossReason Reason { get; }

    /// <summary>Gets what happened, in words, for logs.</summary>
    public string Detail { get; }
}
