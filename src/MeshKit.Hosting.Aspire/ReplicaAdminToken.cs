using System.Security.Cryptography;

namespace MeshKit.Hosting.Aspire;

/// <summary>
/// The admin token every control-service replica of an AppHost shares, kept in
/// <c>&lt;StateDirectory&gt;/replicas/admin-token</c> (owner-only) so it is the same across runs, and written as
/// <c>admin-token</c> into each replica's data directory, where the control service reads its token when
/// <c>ControlPlane:AdminToken</c> is not set. So the token stays out of the environment (and the dashboard's view of
/// it), as with one replica; the replicas store its SHA-256 in Consul KV, and one token works on every replica.
/// </summary>
internal static class ReplicaAdminToken
{
    public const string FileName = "admin-token";

    /// <summary>The control service's shortest admin token (<c>ControlPlane:AdminToken</c>).</summary>
    private const int MinimumLength = 16;

    /// <summary>Reads the token kept in <paramref name="directory"/>, or makes one (32 random bytes, base64url).</summary>
    public static string LoadOrCreate(string directory)
    {
        DevelopmentCertificateAuthority.CreateOwnerOnlyDirectory(directory);
        var path = Path.Combine(directory, FileName);
        if (Read(path) is { } existing)
        {
            return existing;
        }

        if (File.Exists(path))
        {
            // Too short or empty: not one this AppHost wrote. Replace it.
            File.Delete(path);
        }

        var token = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        try
        {
            DevelopmentCertificateAuthority.WriteOwnerOnly(path, token);
        }
        catch (IOException) when (Read(path) is not null)
        {
            // Another AppHost wrote it first; use theirs.
        }

        return Read(path) ?? throw new InvalidOperationException($"The control-service replicas' admin token in '{path}' could not be created or read; delete the file and start again.");
    }

    /// <summary>Writes <paramref name="token"/> as <c>admin-token</c> in a replica's data directory, unless it is there already.</summary>
    public static void WriteTo(string dataDirectory, string token)
    {
        DevelopmentCertificateAuthority.CreateOwnerOnlyDirectory(dataDirectory);
        var path = Path.Combine(dataDirectory, FileName);
        if (Read(path) == token)
        {
            return;
        }

        // Made aside with its final mode, then moved over whatever was there.
        var temporary = Path.Combine(dataDirectory, $".{FileName}.{Guid.NewGuid():N}.tmp");
        DevelopmentCertificateAuthority.WriteOwnerOnly(temporary, token);
        File.Move(temporary, path, overwrite: true);
    }

    private static string? Read(string path)
    {
        try
        {
            var token = File.Exists(path) ? File.ReadAllText(path).Trim() : null;
            return token is { Length: >= MinimumLength } ? token : null;
        }
        catch (IOException)
        {
            return null;
        }
    }
}
