using System.Text;
using Microsoft.Extensions.Configuration;

namespace MeshKit.Policy;

/// <summary>
/// Composes the policy a workload runs: its local configuration and the central document from the control service, by
/// the documented precedence. The runtime (<c>PolicyWatcher</c>) and <c>meshctl why</c> use this same code.
/// </summary>
public static class PolicyComposer
{
    private static readonly string[] LocalPaths = ["Mesh:Policy", "Mesh:Authorization"];

    /// <summary>Composes local configuration with a central document in JSON.</summary>
    /// <param name="local">The app's configuration (its <c>Mesh</c> section is read).</param>
    /// <param name="centralJson">The central document (<c>{ "Policy": ..., "Authorization": ... }</c>), or <see langword="null"/>.</param>
    /// <returns>The merged, validated policy, or its errors.</returns>
    public static PolicyReadResult Compose(IConfiguration local, string? centralJson)
    {
        ArgumentNullException.ThrowIfNull(local);
        if (centralJson is null)
        {
            return Compose(local, (IConfiguration?)null);
        }

        IConfigurationRoot central;
        try
        {
            central = new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(centralJson))).Build();
        }
        catch (Exception ex) when (ex is FormatException or InvalidDataException or System.Text.Json.JsonException)
        {
            return new PolicyReadResult(null, [new PolicyError("(central policy)", $"is not valid JSON: {ex.GetBaseException().Message}")]);
        }

        return Compose(local, central);
    }

    /// <summary>
    /// Merges local and central policy: central <c>Defaults</c>, <c>SubsetHeader</c> and each central destination replace
    /// the local ones whole; a central <c>Authorization</c> replaces the local one whole; everything else stays local.
    /// </summary>
    /// <param name="local">The app's configuration (its <c>Mesh</c> section is read).</param>
    /// <param name="central">The central policy document as configuration, or <see langword="null"/> when there is none.</param>
    /// <returns>The merged, validated policy, or its errors.</returns>
    public static PolicyReadResult Compose(IConfiguration local, IConfiguration? central)
    {
        if (central is null)
        {
            return PolicyReader.Read(local.GetSection("Mesh"));
        }

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

            foreach (var (key, value) in replacement.AsEnumerable(makePathsRelative: true))
            {
                if (value is not null)
                {
                    data[key.Length == 0 ? localPrefix : $"{localPrefix}:{key}"] = value;
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

        return PolicyReader.Read(new ConfigurationBuilder().AddInMemoryCollection(data).Build().GetSection("Mesh"));
    }
}
