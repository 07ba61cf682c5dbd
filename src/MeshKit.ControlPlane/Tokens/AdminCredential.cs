using System.Security.Cryptography;
using System.Text;
using MeshKit.ControlPlane.Storage;
using Microsoft.Extensions.Options;

namespace MeshKit.ControlPlane.Tokens;

/// <summary>
/// The admin API's bearer token: the configured <c>ControlPlane:AdminToken</c>, or one generated on first start and
/// kept in <c>admin-token</c> in the data directory (mode 0600). Only its hash is held in memory after start.
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

    public bool Matches(string presented) =>
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(presented)), _hash);
}
