using System.Text;
using System.Text.Json;
using MeshKit.Consul;
using MeshKit.ControlPlane.Storage;

namespace MeshKit.ControlPlane.Canary;

/// <summary>Where the leading replica keeps the canaries' states: a file in its data directory, or Consul KV with replicas.</summary>
internal abstract class CanaryStateStore
{
    protected static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>Gets where the states are, for logs and the API.</summary>
    public abstract string Location { get; }

    public abstract Task<Dictionary<string, CanaryState>> LoadAsync(CancellationToken cancellationToken);

    public abstract Task SaveAsync(CanaryState state, CancellationToken cancellationToken);

    public abstract Task DeleteAsync(string key, CancellationToken cancellationToken);

    /// <summary>The canaries' states live with central policy: Consul KV beside it, or a file in its folder.</summary>
    public static CanaryStateStore Create(SharedConsul shared, Policy.CentralPolicy central) =>
        shared.Client is { } consul ? new ConsulStore(consul, shared.CanariesPrefix) : new FileStore(Path.Combine(central.Folder!, "canaries.state"));

    /// <summary>One file with every state, written whole (a few canaries, a few kilobytes each).</summary>
    private sealed class FileStore(string path) : CanaryStateStore
    {
        private readonly Lock _lock = new();
        private Dictionary<string, CanaryState>? _states;

        public override string Location => path;

        public override Task<Dictionary<string, CanaryState>> LoadAsync(CancellationToken cancellationToken)
        {
            lock (_lock)
            {
                _states = File.Exists(path)
                    ? JsonSerializer.Deserialize<Dictionary<string, CanaryState>>(File.ReadAllText(path), Json) ?? []
                    : [];
                return Task.FromResult(new Dictionary<string, CanaryState>(_states, StringComparer.Ordinal));
            }
        }

        public override Task SaveAsync(CanaryState state, CancellationToken cancellationToken)
        {
            lock (_lock)
            {
                _states ??= [];
                _states[state.Key] = state;
                SecureFile.WriteAllText(path, JsonSerializer.Serialize(_states, Json));
            }

            return Task.CompletedTask;
        }

        public override Task DeleteAsync(string key, CancellationToken cancellationToken)
        {
            lock (_lock)
            {
                if (_states?.Remove(key) == true)
                {
                    SecureFile.WriteAllText(path, JsonSerializer.Serialize(_states, Json));
                }
            }

            return Task.CompletedTask;
        }
    }

    /// <summary>One KV key per canary under <c>&lt;KeyPrefix&gt;canaries/</c>.</summary>
    private sealed class ConsulStore(ConsulClient consul, string prefix) : CanaryStateStore
    {
        public override string Location => $"Consul KV {prefix}";

        public override async Task<Dictionary<string, CanaryState>> LoadAsync(CancellationToken cancellationToken)
        {
            var states = new Dictionary<string, CanaryState>(StringComparer.Ordinal);
            var listed = await consul.ListKeysAsync(prefix, cancellationToken: cancellationToken).ConfigureAwait(false);
            foreach (var entry in listed.Value)
            {
                if (JsonSerializer.Deserialize<CanaryState>(entry.Value.Span, Json) is { } state)
                {
                    states[state.Key] = state;
                }
            }

            return states;
        }

        public override Task SaveAsync(CanaryState state, CancellationToken cancellationToken) =>
            consul.PutKeyAsync(prefix + state.Key, Encoding.UTF8.GetBytes(JsonSerializer.Serialize(state, Json)), cancellationToken: cancellationToken);

        public override Task DeleteAsync(string key, CancellationToken cancellationToken) =>
            consul.DeleteKeyAsync(prefix + key, cancellationToken: cancellationToken);
    }
}
