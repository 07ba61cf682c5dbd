using MeshKit.ControlPlane.Storage;

namespace MeshKit.ControlPlane.Workloads;

/// <summary>
/// SPIFFE IDs the operator revoked: the control service issues them no certificate (with a token or by renewal), and
/// tells workloads on the control channel, so the revoked ones drop the certificate they hold and their peers refuse them.
/// Shared by every replica through Consul KV when configured (<c>ControlPlane:Consul</c>), else kept in the data directory.
/// </summary>
internal sealed class IdentityRevocations : IAsyncDisposable
{
    private readonly RevocationList _list;

    public IdentityRevocations(ControlPlaneDataDirectory dataDirectory, SharedConsul shared, ILogger<IdentityRevocations> logger)
    {
        _list = new RevocationList("identity", Path.Combine(dataDirectory.Path, "revoked-identities.json"), shared, shared.RevocationsPrefix + "identities", logger);
        _list.Changed += () => Changed?.Invoke();
        _list.Start();
    }

    public event Action? Changed;

    public IReadOnlyDictionary<string, string> All => _list.Entries;

    /// <summary>Gets the revoked SPIFFE IDs, which every workload refuses as peers (sent on each watch answer).</summary>
    public IReadOnlyList<string> RevokedIds => _list.Keys;

    /// <inheritdoc cref="RevocationList.IsKnown"/>
    public bool IsKnown => _list.IsKnown;

    /// <inheritdoc cref="RevocationList.IsCurrent"/>
    public bool IsCurrent => _list.IsCurrent;

    /// <inheritdoc cref="RevocationList.ConfirmedAt"/>
    public DateTimeOffset? ConfirmedAt => _list.ConfirmedAt;

    /// <inheritdoc cref="RevocationList.MaxStaleness"/>
    public TimeSpan MaxStaleness => _list.MaxStaleness;

    /// <summary>Gets where the list is kept, for messages.</summary>
    public string Location => _list.Location;

    public bool IsRevoked(string spiffeId, out string reason) => _list.TryGet(spiffeId, out reason);

    /// <exception cref="RevocationStoreUnavailableException">The shared store could not be written.</exception>
    public Task RevokeAsync(string spiffeId, string reason, CancellationToken cancellationToken) => _list.SetAsync(spiffeId, reason, cancellationToken);

    /// <exception cref="RevocationStoreUnavailableException">The shared store could not be written.</exception>
    public Task<bool> RestoreAsync(string spiffeId, CancellationToken cancellationToken) => _list.RemoveAsync(spiffeId, cancellationToken);

    public ValueTask DisposeAsync() => _list.DisposeAsync();
}
