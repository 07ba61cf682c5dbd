using System.Collections.Immutable;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
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
/// The join tokens this control service accepts, and the names of revoked ones (persisted in the data directory
/// so that a revocation survives restarts).
/// </summary>
internal sealed class JoinTokenRegistry
{
    private readonly ImmutableArray<JoinToken> _tokens;
    private readonly string _revocationsPath;
    private readonly Lock _gate = new();
    private ImmutableHashSet<string> _revoked;

    public JoinTokenRegistry(IOptions<ControlPlaneOptions> options, ControlPlaneDataDirectory dataDirectory)
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
        _revocationsPath = Path.Combine(dataDirectory.Path, "revoked-tokens.json");
        _revoked = LoadRevocations(_revocationsPath);
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

    /// <summary>Gets whether a token name is revoked.</summary>
    public bool IsRevoked(string name) => _revoked.Contains(name);

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

    /// <summary>Revokes a token by name, durably.</summary>
    /// <returns><see langword="false"/> when no token has that name.</returns>
    public bool Revoke(string name)
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

        lock (_gate)
        {
            _revoked = _revoked.Add(name);
            SecureFile.WriteAllText(_revocationsPath, JsonSerializer.Serialize(_revoked.Order(StringComparer.Ordinal).ToArray()));
        }

        return true;
    }

    private static ImmutableHashSet<string> LoadRevocations(string path)
    {
        if (!File.Exists(path))
        {
            return ImmutableHashSet<string>.Empty.WithComparer(StringComparer.Ordinal);
        }

        try
        {
            var names = JsonSerializer.Deserialize<string[]>(File.ReadAllText(path)) ?? [];
            return names.ToImmutableHashSet(StringComparer.Ordinal);
        }
        catch (JsonException ex)
        {
            // Failing open here would silently un-revoke tokens; refuse to start instead.
            throw new InvalidDataException($"The token revocation list '{path}' is not valid JSON; fix or remove it (removing it un-revokes every token).", ex);
        }
    }
}
