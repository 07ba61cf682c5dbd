using Microsoft.Extensions.Configuration;

namespace MeshKit.Policy;

/// <summary>
/// Composes the policy a workload runs: its local configuration and the central document from the control service, by
/// the documented precedence. The runtime (<c>PolicyWatcher</c>) and <c>meshctl why</c> use this same code, and central
/// JSON is parsed only here (through <see cref="PolicyReader"/>'s one JSON parse).
/// </summary>
public static class PolicyComposer
{
    private static readonly string[] LocalPaths = ["Mesh:Policy", "Mesh:Authorization"];

    /// <summary>
    /// Merges local policy with a central document in JSON: central <c>Defaults</c>, <c>SubsetHeader</c> and each central
    /// destination replace the local ones whole; a central <c>Authorization</c> replaces the local one whole; everything
    /// else stays local. The result is validated like any policy.
    /// </summary>
    /// <param name="local">The app's configuration (its <c>Mesh</c> section is read).</param>
    /// <param name="centralJson">The central document (<c>{ "Policy": ..., "Authorization": ... }</c>), or <see langword="null"/> when there is none.</param>
    /// <returns>The merged, validated policy, or its errors (a JSON syntax error is one error, on <c>(central policy)</c>).</returns>
    public static PolicyReadResult Compose(IConfiguration local, string? centralJson)
    {
        ArgumentNullException.ThrowIfNull(local);
        if (centralJson is null)
        {
            return PolicyReader.Read(local.GetSection("Mesh"));
        }

        if (!PolicyReader.TryParseJson(centralJson, "(central policy)", out var central, out var error))
        {
            return new PolicyReadResult(null, [error]);
        }

        return PolicyReader.Read(Merge(local, central).GetSection("Mesh"));
    }

    // Both sides are configuration keys here: the local Mesh:Policy and Mesh:Authorization keys, with the subtrees the
    // central document holds replaced by its keys. The reader's error paths and the version hash are defined on these keys.
    private static IConfigurationRoot Merge(IConfiguration local, IConfiguration central)
    {
        var data = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var path in LocalPaths)
        {
            foreach (var (key, value) in local.GetSection(path).AsEnumerable())
            {
                if (value is not null)
                {
                    data[key] = value;
                }
            }
        }

        void Replace(string localPrefix, IConfigurationSection replacement)
        {
            foreach (var key in data.Keys.Where(k => k.Equals(localPrefix, StringComparison.OrdinalIgnoreCase) || k.StartsWith(localPrefix + ":", StringComparison.OrdinalIgnoreCase)).ToList())
            {
                data.Remove(key);
            }

            // AsEnumerable(makePathsRelative: true) leaves out the section's own value (a central SubsetHeader), so add it here.
            if (replacement.Value is { } own)
            {
                data[localPrefix] = own;
            }

            foreach (var (key, value) in replacement.AsEnumerable(makePathsRelative: true))
            {
                if (value is not null)
                {
                    data[$"{localPrefix}:{key}"] = value;
                }
            }
        }

        var policy = central.GetSection("Policy");
        if (policy["SubsetHeader"] is not null)
        {
            Replace("Mesh:Policy:SubsetHeader", policy.GetSection("SubsetHeader"));
        }

        if (policy.GetSection("Defaults").Exists())
        {
            Replace("Mesh:Policy:Defaults", policy.GetSection("Defaults"));
        }

        foreach (var destination in policy.GetSection("Destinations").GetChildren())
        {
            Replace($"Mesh:Policy:Destinations:{destination.Key}", destination);
        }

        if (central.GetSection("Authorization").Exists())
        {
            Replace("Mesh:Authorization", central.GetSection("Authorization"));
        }

        return new ConfigurationBuilder().AddInMemoryCollection(data).Build();
    }
}
