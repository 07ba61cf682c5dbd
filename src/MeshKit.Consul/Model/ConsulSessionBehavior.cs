namespace MeshKit.Consul;

/// <summary>What Consul does with the keys a session holds when the session is invalidated (its <c>Behavior</c>).</summary>
public enum ConsulSessionBehavior
{
    /// <summary>The locks are released: the keys stay, with no <c>Session</c>, and can be acquired once the lock delay has passed. Consul's default.</summary>
    Release,

    /// <summary>The keys are deleted (ephemeral entries).</summary>
    Delete,
}
