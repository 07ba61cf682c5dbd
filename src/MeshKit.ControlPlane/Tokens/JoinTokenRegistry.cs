using System.Collections.Immutable;
using System.Security.Cryptography;
using System.Text;
using MeshKit.ControlPlane.Storage;
using Microsoft.Extensions.Options;

namespace MeshKit.ControlPlane.Tokens;

/// <summary>A configured join token, held as a hash; the secret itself is not kept.</summary>
/// <param name="Name">The token's configuration name (safe to log).</param>
/// <param name="Hash">SHA-256 of the secret.</param>
/// <param name="Grants">The services it grants.</param>
internal sealed record JoinToken(string Name, byte[] Hash, ImmutableArray<ServiceGrant> Grants)
{
    public bool Allows(string @namespace, string service)
    {
        foreach (var grant in Grants)
        {
            if (grant.Covers(@namespace, service))
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>
/// The join tokens this control service accepts, and the names of revoked ones: shared by every replica through Consul KV
/// when configured (<c>ControlPlane:Consul</c>), else kept in the data directory, so a revocation survives restarts.
/// </summary>
internal sealed class JoinTokenRegistry : IAsyncDisposable
{
    private readonly ImmutableArray<JoinToken> _tokens;
    private readonly RevocationList _revoked;

    public JoinTokenRegistry(IOptions<ControlPlaneOptions> options, ControlPlaneDataDirectory dataDirectory, SharedConsul shared, ILogger<JoinTokenRegistry> logger)
    {
        var value = options.Value;
        var tokens = ImmutableArray.CreateBuilder<JoinToken>();
        foreach (var (name, token) in value.JoinTokens)
        {
            var grants = ImmutableArray.CreateBuilder<ServiceGrant>();
            foreach (var service in token.Services)
            {
                // Options validation has already refused entries that do not parse.
                if (ServiceGrant.TryParse(service, value.AllowWildcardGrants, out var grant, out _))
                {
                    grants.Add(grant);
                }
            }

            tokens.Add(new JoinToken(name, SHA256.HashData(Encoding.UTF8.GetBytes(token.Token ?? string.Empty)), grants.ToImmutable()));
        }

        _tokens = tokens.ToImmutable();
        _revoked = new RevocationList("token", Path.Combine(dataDirectory.Path, "revoked-tokens.json"), shared, shared.RevocationsPrefix + "tokens", logger);
        _revoked.Start();
    }

    /// <summary>Gets the names of the configured tokens.</summary>
    public IEnumerable<string> Names
    {
        get
        {
            foreach (var token in _tokens)
            {
                yield return token.Name;
            }
        }
    }

    /// <inheritdoc cref="RevocationList.IsKnown"/>
    public bool IsKnown => _revoked.IsKnown;

    /// <inheritdoc cref="RevocationList.IsCurrent"/>
    public bool IsCurrent => _revoked.IsCurrent;

    /// <inheritdoc cref="RevocationList.ConfirmedAt"/>
    public DateTimeOffset? ConfirmedAt => _revoked.ConfirmedAt;

    /// <inheritdoc cref="RevocationList.MaxStaleness"/>
    public TimeSpan MaxStaleness => _revoked.MaxStaleness;

    /// <summary>Gets where the revocations are kept, for messages.</summary>
    public string Location => _revoked.Location;

    /// <summary>Gets whether a token name is revoked.</summary>
    public bool IsRevoked(string name) => _revoked.TryGet(name, out _);

    /// <summary>Finds the token whose secret equals <paramref name="presented"/>, comparing in constant time.</summary>
    /// <returns>The token, or <see langword="null"/> when none matches. A revoked token is returned; the caller refuses it.</returns>
    public JoinToken? Find(string presented)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(presented));
        JoinToken? match = null;

        // Every token is compared, with no early exit, so timing does not tell how many tokens exist or which matched.
        foreach (var token in _tokens)
        {
            if (CryptographicOperations.FixedTimeEquals(hash, token.Hash))
            {
                match = token;
            }
        }

        return match;
    }

    /// <summary>Revokes a token by name, durably and on every replica.</summary>
    /// <returns><see langword="false"/> when no token has that name.</returns>
    /// <exception cref="RevocationStoreUnavailableException">The shared store could not be written.</exception>
    public async Task<bool> RevokeAsync(string name, CancellationToken cancellationToken)
    {
        var known = false;
        foreach (var token in _tokens)
        {
            known |= string.Equals(token.Name, name, StringComparison.Ordinal);
        }

        if (!known)
        {
            return false;
        }

        await _revoked.SetAsync(name, "revoked by an operator", cancellationToken).ConfigureAwait(false);
        return true;
    }

    public ValueTask DisposeAsync() => _revoked.DisposeAsync();
}
