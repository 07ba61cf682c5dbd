namespace MeshKit.Consul;

/// <summary>What a <see cref="ConsulLock"/> competes for, and the session that holds it.</summary>
public sealed class ConsulLockOptions
{
    /// <summary>MeshKit's default session TTL for a lock: 15 seconds (renewed every 7.5 seconds).</summary>
    public static readonly TimeSpan DefaultTtl = TimeSpan.FromSeconds(15);

    /// <summary>Gets the KV key whose lock is competed for, for example <c>meshkit/leader</c>.</summary>
    public required string Key { get; init; }

    /// <summary>
    /// Gets the value the holder writes into the key when it acquires it, so that the others know who holds it (for
    /// example the holder's ID and address). It stays in the key after a release. Default: empty.
    /// </summary>
    public ReadOnlyMemory<byte> Value { get; init; }

    /// <summary>
    /// Gets the TTL of the lock's session. The session is renewed every half TTL; a holder that has not renewed it
    /// for a whole TTL counts the lock as lost. Consul agents accept 10 seconds (<c>session_ttl_min</c>) to 24 hours.
    /// Default 15 seconds.
    /// </summary>
    public TimeSpan Ttl { get; init; } = DefaultTtl;

    /// <summary>
    /// Gets the session's lock delay: after the session ends without releasing the key (a crash, an expiry), nobody can
    /// acquire the key for this long. From 0 to 60 seconds; default 15 seconds, Consul's.
    /// </summary>
    public TimeSpan LockDelay { get; init; } = ConsulSessionRequest.DefaultLockDelay;

    /// <summary>Gets the session's name in the Consul UI. Default <c>MeshKit lock &lt;key&gt;</c>.</summary>
    public string? SessionName { get; init; }

    /// <summary>
    /// Gets the node checks the session is tied to besides its TTL. <see langword="null"/> (default) keeps Consul's
    /// default, the agent node's <c>serfHealth</c>; an empty list makes the TTL alone end the session.
    /// </summary>
    public IReadOnlyList<string>? NodeChecks { get; init; }

    /// <summary>Checks the settings before the lock starts.</summary>
    /// <exception cref="ArgumentException">A value is out of range.</exception>
    internal void Validate()
    {
        if (string.IsNullOrEmpty(Key) || Key.StartsWith('/'))
        {
            throw new ArgumentException($"The lock's Key '{Key}' must be a non-empty KV key that does not start with '/'.", nameof(Key));
        }

        if (Ttl <= TimeSpan.Zero || Ttl > ConsulSessionRequest.MaxTtl)
        {
            throw new ArgumentException($"The lock's Ttl is {Ttl}; use a value above 0 and at most 24 hours (Consul agents refuse less than their session_ttl_min, 10 seconds by default).", nameof(Ttl));
        }

        if (LockDelay < TimeSpan.Zero || LockDelay > ConsulSessionRequest.MaxLockDelay)
        {
            throw new ArgumentException($"The lock's LockDelay is {LockDelay}; use a value from 0 to 60 seconds.", nameof(LockDelay));
        }
    }
}
