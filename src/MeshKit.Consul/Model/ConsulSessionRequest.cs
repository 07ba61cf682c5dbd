namespace MeshKit.Consul;

/// <summary>
/// A session to create (<c>PUT /v1/session/create</c>). Every property has Consul's default: a session on the agent's
/// node, tied to the node's <c>serfHealth</c> check, with no TTL, a 15-second lock delay and <c>release</c> behavior.
/// </summary>
public sealed class ConsulSessionRequest
{
    /// <summary>Consul's default lock delay: 15 seconds.</summary>
    public static readonly TimeSpan DefaultLockDelay = TimeSpan.FromSeconds(15);

    /// <summary>The longest lock delay Consul applies: 60 seconds (longer values are cut to it).</summary>
    public static readonly TimeSpan MaxLockDelay = TimeSpan.FromSeconds(60);

    /// <summary>The longest session TTL Consul accepts: 24 hours.</summary>
    public static readonly TimeSpan MaxTtl = TimeSpan.FromHours(24);

    /// <summary>Gets a human-readable name for the session, shown in the Consul UI. Default: none.</summary>
    public string? Name { get; init; }

    /// <summary>
    /// Gets the session's TTL: Consul invalidates the session when it is not renewed
    /// (<see cref="ConsulClient.RenewSessionAsync"/>) within it. Consul promises not to invalidate it sooner, and in fact
    /// waits up to twice as long. Consul accepts 10 seconds (its agents' <c>session_ttl_min</c>) to 24 hours.
    /// Default <see langword="null"/>: no TTL, the session lives until destroyed or until one of its checks fails.
    /// </summary>
    public TimeSpan? Ttl { get; init; }

    /// <summary>
    /// Gets the lock delay: after the session is invalidated or destroyed, the keys it held cannot be acquired for this
    /// long, so that a holder that has not yet noticed its loss stops before anyone else starts. From 0 to 60 seconds;
    /// default 15 seconds (<see cref="DefaultLockDelay"/>). A release through <see cref="ConsulClient.ReleaseKeyAsync"/>
    /// applies no delay.
    /// </summary>
    public TimeSpan LockDelay { get; init; } = DefaultLockDelay;

    /// <summary>Gets what happens to the held keys when the session is invalidated. Default <see cref="ConsulSessionBehavior.Release"/>.</summary>
    public ConsulSessionBehavior Behavior { get; init; } = ConsulSessionBehavior.Release;

    /// <summary>Gets the node the session belongs to; it must be registered. Default <see langword="null"/>: the agent's own node.</summary>
    public string? Node { get; init; }

    /// <summary>
    /// Gets the node health checks that invalidate the session when they fail. <see langword="null"/> (default) keeps
    /// Consul's default, the node's <c>serfHealth</c>; an empty list makes a session that only its
    /// <see cref="Ttl"/> ends (sent as <c>NodeChecks: []</c>).
    /// </summary>
    public IReadOnlyList<string>? NodeChecks { get; init; }

    /// <summary>Checks the values Consul would refuse, before anything is sent.</summary>
    /// <exception cref="ArgumentException">A value is out of Consul's range.</exception>
    internal void Validate()
    {
        if (LockDelay < TimeSpan.Zero || LockDelay > MaxLockDelay)
        {
            throw new ArgumentException($"The session's LockDelay is {LockDelay}; use a value from 0 to {MaxLockDelay.TotalSeconds:0} seconds.", nameof(LockDelay));
        }

        if (Ttl is { } ttl && (ttl <= TimeSpan.Zero || ttl > MaxTtl))
        {
            throw new ArgumentException($"The session's Ttl is {ttl}; use a value above 0 and at most 24 hours (Consul agents refuse less than their session_ttl_min, 10 seconds by default).", nameof(Ttl));
        }

        if (Behavior is not (ConsulSessionBehavior.Release or ConsulSessionBehavior.Delete))
        {
            throw new ArgumentException($"The session's Behavior {(int)Behavior} is neither Release nor Delete.", nameof(Behavior));
        }
    }
}
