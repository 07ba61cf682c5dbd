namespace MeshKit.Consul;

/// <summary>Why a <see cref="ConsulLock"/> stopped holding its key.</summary>
public enum ConsulLockLossReason
{
    /// <summary>Consul no longer knows the session (a renewal answered 404): it was invalidated or destroyed, and its lock went with it.</summary>
    SessionInvalidated,

    /// <summary>
    /// No renewal of the session succeeded within its TTL (Consul unreachable or failing): Consul may invalidate it at
    /// any moment, so the holder stops counting on the lock before anyone else can take it.
    /// </summary>
    SessionExpired,

    /// <summary>The key no longer names the session: it was released by someone else, deleted, or is held by another session.</summary>
    KeyLost,

    /// <summary>The lock was stopped (<see cref="ConsulLock.StopAsync"/>); the key is released.</summary>
    Stopped,
}
