using System.Collections.Immutable;
using MeshKit.Policy;
using MeshKit.ControlPlane.Storage;
using Microsoft.Extensions.Options;

namespace MeshKit.ControlPlane.Policy;

/// <summary>
/// The central policy the control service serves: the store's documents (a folder of files, or Consul KV shared by
/// replicas), over seed documents from its own configuration (<c>ControlPlane:Policy:Services:&lt;service&gt;</c>).
/// </summary>
internal sealed class CentralPolicy : IAsyncDisposable
{
    private readonly ImmutableDictionary<string, StoredPolicy> _seeds;

    public CentralPolicy(IOptions<ControlPlaneOptions> options, IConfiguration configuration, ControlPlaneDataDirectory data, ILoggerFactory loggerFactory)
    {
        var policy = options.Value.Policy;
        Store = policy.Consul?.Address is not null
            ? new ConsulPolicyStore(policy.Consul, loggerFactory)
            : new DirectoryPolicyStore(policy.Directory ?? Path.Combine(data.Path, "policy"), loggerFactory.CreateLogger<DirectoryPolicyStore>());
        Source = policy.Consul?.Address is not null ? "consul" : "directory";

        var seeds = ImmutableDictionary.CreateBuilder<string, StoredPolicy>(StringComparer.Ordinal);
        var errors = new List<PolicyError>();
        foreach (var service in configuration.GetSection("ControlPlane:Policy:Services").GetChildren())
        {
            var path = $"ControlPlane:Policy:Services:{service.Key}";
            if (!PolicyDocument.IsServiceKey(service.Key))
            {
                errors.Add(new PolicyError(path, "is not a service key; use the service name, or name.namespace outside the default namespace."));
                continue;
            }

            var result = PolicyReader.Read(service, path);
            if (!result.IsValid)
            {
                errors.AddRange(result.Errors);
                continue;
            }

            seeds[service.Key] = new StoredPolicy(service.Key, PolicyDocument.ToJson(service), result.Snapshot!.Version, 0);
        }

        if (errors.Count > 0)
        {
            throw new PolicyValidationException(errors);
        }

        _seeds = seeds.ToImmutable();
    }

    public PolicyStore Store { get; }

    /// <summary>Gets where documents are stored: <c>directory</c> or <c>consul</c>.</summary>
    public string Source { get; }

    /// <summary>Gets a service's document: the stored one, else the seed from configuration.</summary>
    public StoredPolicy? Get(string service) => Store.Get(service) ?? (_seeds.TryGetValue(service, out var seed) ? seed : null);

    /// <summary>Gets every service with a document.</summary>
    public IEnumerable<StoredPolicy> All()
    {
        foreach (var (service, seed) in _seeds)
        {
            if (Store.Get(service) is null)
            {
                yield return seed;
            }
        }

        foreach (var document in Store.Documents.Values)
        {
            yield return document;
        }
    }

    public ValueTask DisposeAsync() => Store.DisposeAsync();
}
