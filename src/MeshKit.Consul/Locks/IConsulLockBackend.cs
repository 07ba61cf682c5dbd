namespace MeshKit.Consul;

/// <summary>The Consul calls a <see cref="ConsulLock"/> makes; tests replace them to drive the lock in virtual time.</summary>
internal interface IConsulLockBackend
{
    Task<string> CreateSessionAsync(ConsulSessionRequest request, CancellationToken cancellationToken);

    /// <summary>Renews; <see langword="null"/> when Consul no longer knows the session.</summary>
    Task<ConsulSession?> RenewSessionAsync(string sessionId, CancellationToken cancellationToken);

    Task DestroySessionAsync(string sessionId, CancellationToken cancellationToken);

    Task<bool> AcquireAsync(string key, string sessionId, ReadOnlyMemory<byte> value, CancellationToken cancellationToken);

    Task<bool> ReleaseAsync(string key, string sessionId, ReadOnlyMemory<byte> value, CancellationToken cancellationToken);

    /// <summary>Reads the key now (no blocking); the index is the answer's <c>X-Consul-Index</c>.</summary>
    Task<ConsulQueryResult<ConsulKeyValue?>> GetKeyAsync(string key, CancellationToken cancellationToken);

    /// <summary>Follows the key with blocking queries; each item is a change (failures are retried inside).</summary>
    IAsyncEnumerable<ConsulQueryResult<ConsulKeyValue?>> WatchKeyAsync(string key, CancellationToken cancellationToken);
}

/// <summary>The lock's calls, made by a <see cref="ConsulClient"/>.</summary>
internal sealed class ConsulClientLockBackend(ConsulClient client) : IConsulLockBackend
{
    public Task<string> CreateSessionAsync(ConsulSessionRequest request, CancellationToken cancellationToken) =>
        client.CreateSessionAsync(request, cancellationToken);

    public Task<ConsulSession?> RenewSessionAsync(string sessionId, CancellationToken cancellationToken) =>
        client.RenewSessionAsync(sessionId, cancellationToken);

    public Task DestroySessionAsync(string sessionId, CancellationToken cancellationToken) =>
        client.DestroySessionAsync(sessionId, cancellationToken);

    public Task<bool> AcquireAsync(string key, string sessionId, ReadOnlyMemory<byte> value, CancellationToken cancellationToken) =>
        client.AcquireKeyAsync(key, sessionId, value, cancellationToken);

    public Task<bool> ReleaseAsync(string key, string sessionId, ReadOnlyMemory<byte> value, CancellationToken cancellationToken) =>
        client.ReleaseKeyAsync(key, sessionId, value, cancellationToken);

    public Task<ConsulQueryResult<ConsulKeyValue?>> GetKeyAsync(string key, CancellationToken cancellationToken) =>
        client.GetKeyAsync(key, cancellationToken: cancellationToken);

    public async IAsyncEnumerable<ConsulQueryResult<ConsulKeyValue?>> WatchKeyAsync(string key, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var query = client.CreateKeyValueQuery(key);
        await foreach (var result in query.WatchAsync(cancellationToken).ConfigureAwait(false))
        {
            ConsulKeyValue? found = null;
            foreach (var pair in result.Value)
            {
                if (pair.Key == key)
                {
                    found = pair;
                    break;
                }
            }

            yield return new ConsulQueryResult<ConsulKeyValue?>(found, result.Meta, result.ReceivedAt);
        }
    }
}
