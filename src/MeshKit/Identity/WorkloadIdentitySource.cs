using System.Collections.Frozen;

namespace MeshKit.Identity;

/// <summary>
/// Holds the workload's current <see cref="WorkloadIdentity"/> and tells listeners when it changes. Reads are a single
/// volatile field load, so the request path takes no lock.
/// </summary>
internal sealed class WorkloadIdentitySource
{
    private readonly TimeProvider _time;
    private volatile WorkloadIdentity? _current;
    private volatile string? _failure;
    private volatile FrozenSet<string> _revokedPeers = FrozenSet<string>.Empty;

    /// <summary>Initializes a new instance.</summary>
    /// <param name="time">The clock.</param>
    public WorkloadIdentitySource(TimeProvider time)
    {
        _time = time;
    }

    /// <summary>Raised after the certificate or the trust bundle changed (the new identity is passed).</summary>
    public event Action<WorkloadIdentity>? Changed;

    /// <summary>Gets the current identity, or <see langword="null"/> before the first certificate or after a revocation.</summary>
    public WorkloadIdentity? Current => _current;

    /// <summary>Gets the current identity when it is valid now; otherwise throws, so that mesh traffic fails closed.</summary>
    /// <returns>The identity.</returns>
    /// <exception cref="MeshIdentityException">There is no valid identity; the message says why.</exception>
    public WorkloadIdentity GetValid()
    {
        var identity = _current;
        if (identity is null)
        {
            throw new MeshIdentityException(_failure ?? "The workload has no mesh identity yet: the first certificate has not been issued.");
        }

        if (identity.IsExpired(_time.GetUtcNow()))
        {
            throw new MeshIdentityException(
                $"The workload certificate of {identity.Id} expired at {identity.NotAfter:O} and could not be renewed"
                + (_failure is null ? "." : $": {_failure}")
                + " Mesh calls fail closed until the control service issues a new one.");
        }

        return identity;
    }

    /// <summary>Installs a new certificate (or bundle).</summary>
    internal void Set(WorkloadIdentity identity)
    {
        _current = identity;
        _failure = null;
        Changed?.Invoke(identity);
    }

    /// <summary>Replaces the trust bundle, keeping the certificate.</summary>
    internal void SetBundle(TrustBundle bundle)
    {
        var current = _current;
        if (current is null || current.Bundle.Version == bundle.Version)
        {
            return;
        }

        Set(current.WithBundle(bundle));
    }

    /// <summary>
    /// Gets whether the control service revoked <paramref name="spiffeId"/>: its certificates are refused at the handshake,
    /// and requests on connections it opened before are refused. One volatile read when nothing is revoked.
    /// </summary>
    internal bool IsRevokedPeer(string spiffeId)
    {
        var revoked = _revokedPeers;
        return revoked.Count > 0 && revoked.Contains(spiffeId);
    }

    /// <summary>Gets the revoked SPIFFE IDs this workload refuses as peers.</summary>
    internal IReadOnlySet<string> RevokedPeers => _revokedPeers;

    /// <summary>
    /// Replaces the revoked peer identities (from the control channel); when the set changed, raises <see cref="Changed"/>
    /// so client pools retire connections made to a now-revoked server.
    /// </summary>
    /// <returns><see langword="true"/> when the set changed.</returns>
    internal bool SetRevokedPeers(IReadOnlyCollection<string> spiffeIds)
    {
        var current = _revokedPeers;
        if (current.Count == spiffeIds.Count && spiffeIds.All(current.Contains))
        {
            return false;
        }

        _revokedPeers = spiffeIds.ToFrozenSet(StringComparer.Ordinal);
        if (_current is { } identity)
        {
            Changed?.Invoke(identity);
        }

        return true;
    }

    /// <summary>Raised when something asks for a renewal now (the control service switched issuance to another CA).</summary>
    internal event Action<string>? RenewalRequested;

    /// <summary>Asks the renewal loop to renew now rather than at the usual point.</summary>
    internal void RequestRenewal(string reason) => RenewalRequested?.Invoke(reason);

    /// <summary>Records why renewal is failing, for the error mesh calls report once the certificate expires.</summary>
    internal void ReportFailure(string reason) => _failure = reason;

    /// <summary>Drops the identity (revoked by the control service): every mesh call and handshake fails from now on.</summary>
    internal void Revoke(string reason)
    {
        _failure = reason;
        _current = null;
    }
}
