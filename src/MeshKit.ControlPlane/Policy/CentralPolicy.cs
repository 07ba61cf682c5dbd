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

    public CentralPolicy(IOptions<ControlPlaneOptions> options, IConfiguration configuration, ControlPlaneDataDirectory data, SharedConsul shared, TimeProvider time, ILoggerFactory loggerFactory)
    {
        var policy = options.Value.Policy;
        Folder = shared.Client is null ? policy.Directory ?? Path.Combine(data.Path, "policy") : null;
        Store = shared.Client is { } consul
            ? new ConsulPolicyStore(consul, shared.PolicyPrefix, time, loggerFactory)
            : new DirectoryPolicyStore(Folder!, time, loggerFactory.CreateLogger<DirectoryPolicyStore>());
        Source = shared.Client is not null ? "consul" : "directory";

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

    /// <summary>Gets the folder of the documents when they are kept in files (no Consul), else <see langword="null"/>.</summary>
    public string? Folder { get; }

    /// <summary>Gets where documents are stored: <c>directory</c> or <c>consul</c>.</summary>
    public string Source { get; }

    /// <summary>Gets a service's document: the stored one, else the seed from configuration unless it was deleted.</summary>
    public StoredPolicy? Get(string service) =>
        Store.Get(service) ?? (Store.GetTombstone(service) is null && _seeds.TryGetValue(service, out var seed) ? seed : null);

    /// <summary>
    /// What the control channel tells a workload of its service's central policy: unknown while the store has not loaded
    /// (a replica that cannot reach Consul), else the document, its deletion, or that there is none.
    /// </summary>
    public CentralPolicyAnswer Lookup(string service)
    {
        if (!Store.IsLoaded)
        {
            return new CentralPolicyAnswer(CentralPolicyState.Unknown, null, 0);
        }

        if (Get(service) is { } document)
        {
            return new CentralPolicyAnswer(CentralPolicyState.Present, document, document.Revision);
        }

        return Store.GetTombstone(service) is { } tombstone
            ? new CentralPolicyAnswer(CentralPolicyState.Deleted, null, tombstone.Revision)
            : new CentralPolicyAnswer(CentralPolicyState.Absent, null, 0);
    }

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

/// <summary>What the control service knows of one service's central policy.</summary>
internal enum CentralPolicyState
{
    /// <summary>The store has not loaded yet: the workload keeps what it holds.</summary>
    Unknown,

    /// <summary>No document, and no deletion: the workload keeps what it holds (a file or key removed by hand is this).</summary>
    Absent,

    /// <summary>A document.</summary>
    Present,

    /// <summary>Deleted through the admin API at a revision: the workload drops a document older than that.</summary>
    Deleted,
}

/// <summary>A lookup's answer.</summary>
/// <param name="State">What is known.</param>
/// <param name="Document">The document, when present.</param>
/// <param name="Revision">The document's or the deletion's store revision.</param>
internal sealed record CentralPolicyAnswer(CentralPolicyState State, StoredPolicy? Document, ulong Revision);
