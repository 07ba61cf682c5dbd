using System.Net;
using System.Net.Http.Headers;

namespace MeshKit.Consul;

/// <summary>Sessions and the KV locks they hold (<c>/v1/session/*</c>, <c>?acquire=</c> and <c>?release=</c>).</summary>
public sealed partial class ConsulClient
{
    /// <summary>Creates a session (<c>PUT /v1/session/create</c>).</summary>
    /// <param name="request">The session's TTL, lock delay, behavior, name, node and node checks; Consul's defaults when <see langword="null"/>.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The new session's ID.</returns>
    /// <exception cref="ArgumentException">A value is out of Consul's range (see <see cref="ConsulSessionRequest"/>).</exception>
    /// <exception cref="ConsulException">
    /// The agent could not be reached or refused the session (for example a TTL below its <c>session_ttl_min</c>: 500).
    /// </exception>
    public async Task<string> CreateSessionAsync(ConsulSessionRequest? request = null, CancellationToken cancellationToken = default)
    {
        request ??= new ConsulSessionRequest();
        request.Validate();
        var body = new SessionCreateBody
        {
            Name = string.IsNullOrEmpty(request.Name) ? null : request.Name,
            Node = string.IsNullOrEmpty(request.Node) ? null : request.Node,
            LockDelay = ConsulWire.FormatDuration(request.LockDelay),
            Behavior = ConsulWire.FormatBehavior(request.Behavior),
            Ttl = request.Ttl is { } ttl ? ConsulWire.FormatDuration(ttl) : null,
            NodeChecks = request.NodeChecks,
        };
        using var content = JsonBody(body, ConsulJsonContext.Default.SessionCreateBody);
        var response = await SendAsync(HttpMethod.Put, "v1/session/create", ConsulWire.Query(("dc", _datacenter)), content, cancellationToken).ConfigureAwait(false);
        var created = Parse(response, ConsulJsonContext.Default.SessionCreatedBody);
        if (string.IsNullOrEmpty(created?.Id))
        {
            throw new ConsulException(response.Endpoint, ConsulErrorKind.MalformedResponse, response.StatusCode, $"Consul {response.Endpoint} answered {(int)response.StatusCode} without a session ID.");
        }

        return created.Id;
    }

    /// <summary>
    /// Renews a session's TTL (<c>PUT /v1/session/renew/&lt;id&gt;</c>): Consul counts the TTL again from now.
    /// </summary>
    /// <param name="sessionId">The session's ID.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>
    /// The session (its <see cref="ConsulSession.Ttl"/> may be longer than asked when Consul wants fewer renewals), or
    /// <see langword="null"/> when Consul no longer knows it (404): it was destroyed or invalidated, and its locks are gone.
    /// </returns>
    /// <exception cref="ConsulException">The agent could not be reached or refused the renewal.</exception>
    public async Task<ConsulSession?> RenewSessionAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(sessionId);
        var response = await SendAsync(HttpMethod.Put, "v1/session/renew/" + ConsulWire.Segment(sessionId), ConsulWire.Query(("dc", _datacenter)), null, cancellationToken, notFoundIsAnswer: true).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        var sessions = ParseSessions(response);
        return sessions.Count == 0 ? null : sessions[0];
    }

    /// <summary>
    /// Destroys a session (<c>PUT /v1/session/destroy/&lt;id&gt;</c>). The keys it holds are released (or deleted, by its
    /// behavior) and their lock delay starts. Idempotent: an unknown session is no error.
    /// </summary>
    /// <param name="sessionId">The session's ID.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>What Consul answered: <see langword="true"/> when the destroy was applied.</returns>
    /// <exception cref="ConsulException">The agent could not be reached or refused the call.</exception>
    public async Task<bool> DestroySessionAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(sessionId);
        var response = await SendAsync(HttpMethod.Put, "v1/session/destroy/" + ConsulWire.Segment(sessionId), ConsulWire.Query(("dc", _datacenter)), null, cancellationToken).ConfigureAwait(false);
        return ParseBool(response);
    }

    /// <summary>Reads one session (<c>GET /v1/session/info/&lt;id&gt;</c>).</summary>
    /// <param name="sessionId">The session's ID.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The session, or a <see langword="null"/> value when Consul does not know it; with the answer's index.</returns>
    /// <exception cref="ConsulException">The agent could not be reached, refused the read, or answered malformed JSON.</exception>
    public async Task<ConsulQueryResult<ConsulSession?>> GetSessionAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(sessionId);
        var response = await SendAsync(HttpMethod.Get, "v1/session/info/" + ConsulWire.Segment(sessionId), ConsulWire.Query(("dc", _datacenter)), null, cancellationToken).ConfigureAwait(false);
        var sessions = ParseSessions(response);
        return Result(sessions.Count == 0 ? null : sessions[0], response);
    }

    /// <summary>Lists the active sessions of the datacenter (<c>GET /v1/session/list</c>).</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The sessions (empty when there are none) and the answer's index.</returns>
    /// <exception cref="ConsulException">The agent could not be reached, refused the read, or answered malformed JSON.</exception>
    public async Task<ConsulQueryResult<IReadOnlyList<ConsulSession>>> ListSessionsAsync(CancellationToken cancellationToken = default)
    {
        var response = await SendAsync(HttpMethod.Get, "v1/session/list", ConsulWire.Query(("dc", _datacenter)), null, cancellationToken).ConfigureAwait(false);
        return Result(ParseSessions(response), response);
    }

    /// <summary>
    /// Tries to acquire a key's lock for a session and writes the value (<c>PUT /v1/kv/&lt;key&gt;?acquire=&lt;session&gt;</c>).
    /// The key need not exist. Consul refuses (<see langword="false"/>) while another session holds the key and during the
    /// key's lock delay; for the session that already holds it, it succeeds again and only updates the value. Each new
    /// holder raises the key's <see cref="ConsulKeyValue.LockIndex"/>.
    /// </summary>
    /// <param name="key">The key.</param>
    /// <param name="sessionId">The session that takes the lock.</param>
    /// <param name="value">The value to write, for example who the holder is.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns><see langword="true"/> when the session holds the key.</returns>
    /// <exception cref="ConsulException">
    /// The agent could not be reached or refused the write; an unknown (invalidated) session is refused with 500
    /// "invalid session".
    /// </exception>
    public Task<bool> AcquireKeyAsync(string key, string sessionId, ReadOnlyMemory<byte> value = default, CancellationToken cancellationToken = default) =>
        LockOperationAsync("acquire", key, sessionId, value, cancellationToken);

    /// <summary>
    /// Releases a key's lock held by a session (<c>PUT /v1/kv/&lt;key&gt;?release=&lt;session&gt;</c>), with no lock delay.
    /// The key stays, with no <c>Session</c> and its <see cref="ConsulKeyValue.LockIndex"/> unchanged; Consul writes
    /// <paramref name="value"/> as its value, so pass the current value to keep it.
    /// </summary>
    /// <param name="key">The key.</param>
    /// <param name="sessionId">The session that holds the lock.</param>
    /// <param name="value">The value the key keeps.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns><see langword="true"/> when released; <see langword="false"/> when the session did not hold the key.</returns>
    /// <exception cref="ConsulException">The agent could not be reached or refused the write.</exception>
    public Task<bool> ReleaseKeyAsync(string key, string sessionId, ReadOnlyMemory<byte> value = default, CancellationToken cancellationToken = default) =>
        LockOperationAsync("release", key, sessionId, value, cancellationToken);

    internal static IReadOnlyList<ConsulSession> ParseSessions(ConsulResponse response)
    {
        var raw = Parse(response, ConsulJsonContext.Default.ListSessionEntryBody);
        if (raw is null || raw.Count == 0)
        {
            return [];
        }

        var sessions = new List<ConsulSession>(raw.Count);
        foreach (var entry in raw)
        {
            TimeSpan? ttl = null;
            if (!string.IsNullOrEmpty(entry.Ttl))
            {
                if (!ConsulWire.TryParseDuration(entry.Ttl, out var parsed))
                {
                    throw new ConsulException(response.Endpoint, ConsulErrorKind.MalformedResponse, response.StatusCode, $"Consul {response.Endpoint} answered a session TTL that is not a duration: '{entry.Ttl}'.");
                }

                ttl = parsed > TimeSpan.Zero ? parsed : null;
            }

            sessions.Add(new ConsulSession
            {
                Id = entry.Id ?? string.Empty,
                Name = entry.Name ?? string.Empty,
                Node = entry.Node ?? string.Empty,
                LockDelay = TimeSpan.FromTicks(entry.LockDelay / 100),
                Behavior = string.Equals(entry.Behavior, "delete", StringComparison.OrdinalIgnoreCase) ? ConsulSessionBehavior.Delete : ConsulSessionBehavior.Release,
                Ttl = ttl,
                NodeChecks = entry.NodeChecks ?? entry.Checks ?? [],
                CreateIndex = entry.CreateIndex,
                ModifyIndex = entry.ModifyIndex,
            });
        }

        return sessions;
    }

    private async Task<bool> LockOperationAsync(string operation, string key, string sessionId, ReadOnlyMemory<byte> value, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentException.ThrowIfNullOrEmpty(sessionId);
        using var content = new ReadOnlyMemoryContent(value);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        var query = ConsulWire.Query((operation, sessionId), ("dc", _datacenter));
        var response = await SendAsync(HttpMethod.Put, "v1/kv/" + ConsulWire.KeyPath(key), query, content, cancellationToken).ConfigureAwait(false);
        return ParseBool(response);
    }
}
