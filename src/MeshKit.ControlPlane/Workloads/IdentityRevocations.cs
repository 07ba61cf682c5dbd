using System.Collections.Immutable;
using System.Text.Json;
using MeshKit.ControlPlane.Storage;

namespace MeshKit.ControlPlane.Workloads;

/// <summary>
/// SPIFFE IDs the operator revoked: the control service issues them no certificate (with a token or by renewal), and
/// tells their workloads on the control channel so they drop the one they hold. Persisted in the data directory.
/// </summary>
internal sealed class IdentityRevocations
{
    private readonly string _path;
    private readonly Lock _gate = new();
    private ImmutableDictionary<string, string> _revoked;

    public IdentityRevocations(ControlPlaneDataDirectory dataDirectory)
    {
        _path = System.IO.Path.Combine(dataDirectory.Path, "revoked-identities.json");
        _revoked = Load(_path);
    }

    public event Action? Changed;

    public IReadOnlyDictionary<string, string> All => _revoked;

    public bool IsRevoked(string spiffeId, out string reason)
    {
        if (_revoked.TryGetValue(spiffeId, out var r))
        {
            reason = r;
            return true;
        }

        reason = string.Empty;
        return false;
    }

    public void Revoke(string spiffeId, string reason) => Change(d => d.SetItem(spiffeId, reason));

    public bool Restore(string spiffeId)
    {
        var found = _revoked.ContainsKey(spiffeId);
        if (found)
        {
            Change(d => d.Remove(spiffeId));
        }

        return found;
    }

    private void Change(Func<ImmutableDictionary<string, string>, ImmutableDictionary<string, string>> change)
    {
        lock (_gate)
        {
            _revoked = change(_revoked);
            SecureFile.WriteAllText(_path, JsonSerializer.Serialize(_revoked));
        }

        Changed?.Invoke();
    }

    private static ImmutableDictionary<string, string> Load(string path)
    {
        if (!File.Exists(path))
        {
            return ImmutableDictionary.Create<string, string>(StringComparer.Ordinal);
        }

        try
        {
            var map = JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(path)) ?? [];
            return map.ToImmutableDictionary(StringComparer.Ordinal);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"The identity revocation list '{path}' is not valid JSON; fix or remove it (removing it restores every identity).", ex);
        }
    }
}
