namespace MeshKit.Consul;

/// <summary>A session as Consul reports it (<c>GET /v1/session/info/&lt;id&gt;</c>, <c>/v1/session/list</c>, and the renew answer).</summary>
public sealed class ConsulSession
{
    /// <summary>Gets the session's ID (a UUID): what <c>acquire</c> and <c>release</c> name.</summary>
    public string Id { get; init => field = value ?? string.Empty; } = string.Empty;

    /// <summary>Gets the session's name; empty when none was given.</summary>
    public string Name { get; init => field = value ?? string.Empty; } = string.Empty;

    /// <summary>Gets the node the session belongs to.</summary>
    public string Node { get; init => field = value ?? string.Empty; } = string.Empty;

    /// <summary>Gets the lock delay applied to the keys the session holds when it ends.</summary>
    public TimeSpan LockDelay { get; init; }

    /// <summary>Gets what happens to the held keys when the session is invalidated.</summary>
    public ConsulSessionBehavior Behavior { get; init; }

    /// <summary>
    /// Gets the session's TTL, or <see langword="null"/> for a session without one. In a renew answer Consul may report
    /// a longer TTL than was asked, to ask clients to renew less often.
    /// </summary>
    public TimeSpan? Ttl { get; init; }

    /// <summary>Gets the node checks the session is tied to (empty for a TTL-only session).</summary>
    public IReadOnlyList<string> NodeChecks { get; init => field = value ?? []; } = [];

    /// <summary>Gets the index at which the session was created.</summary>
    public ulong CreateIndex { get; init; }

    /// <summary>Gets the index of the session's last change.</summary>
    public ulong ModifyIndex { get; init; }
}
