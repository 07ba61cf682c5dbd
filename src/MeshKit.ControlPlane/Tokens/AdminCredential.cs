using System.Security.Cryptography;
using System.Text;
using MeshKit.ControlPlane.Storage;
using Microsoft.Extensions.Options;

namespace MeshKit.ControlPlane.Tokens;

/// <summary>
/// The admin API's bearer token: the configured <c>ControlPlane:AdminToken</c>, or one generated on first start and
/// kept in <c>admin-token</c> in the data directory (mode 0600). Only its hash is held in memory after start. With replicas
/// on Consul, <see cref="SharedAdminCredential"/> adds the replicas' shared token (its SHA-256 in Consul KV, never the
/// token), so one token works on every replica.
/// </summary>
internal sealed class AdminCredential
{
    public const string FileName = "admin-token";
    private readonly byte[] _hash;

    public AdminCredential(IOptions<ControlPlaneOptions> options, ControlPlaneDataDirectory dataDirectory)
    {
        var token = options.Value.AdminToken;
        if (string.IsNullOrEmpty(token))
        {
            TokenFilePath = System.IO.Path.Combine(dataDirectory.Path, FileName);
            if (File.Exists(TokenFilePath))
            {
                token = File.ReadAllText(TokenFilePath).Trim();
            }
            else
            {
                token = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
                SecureFile.WriteAllText(TokenFilePath, token);
            }
        }

        _hash = SHA256.HashData(Encoding.UTF8.GetBytes(token));
    }

    /// <summary>Gets the path of the generated token file, or <see langword="null"/> when the token is configured.</summary>
    public string? TokenFilePath { get; }

    private byte[]? _shared;

    /// <summary>Gets the SHA-256 of this replica's own token.</summary>
    public ReadOnlySpan<byte> Hash => _hash;

    /// <summary>Sets the SHA-256 of the token the replicas share, or <see langword="null"/> for none.</summary>
    public void SetShared(byte[]? hash) => Volatile.Write(ref _shared, hash);

    public bool Matches(string presented)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(presented));
        var own = CryptographicOperations.FixedTimeEquals(hash, _hash);
        var shared = Volatile.Read(ref _shared) is { } sharedHash && CryptographicOperations.FixedTimeEquals(hash, sharedHash);
        return own | shared;
    }
}
