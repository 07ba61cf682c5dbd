using MeshKit.Consul;
using Microsoft.Extensions.Options;

namespace MeshKit.ControlPlane.Storage;

/// <summary>
/// The Consul KV store that control-service replicas share, when one is configured: <c>ControlPlane:Consul</c>, or the
/// older <c>ControlPlane:Policy:Consul</c> (policy under its own prefix, revocations under <c>meshkit/revocations/</c>).
/// One client serves every kind of shared state.
/// </summary>
internal sealed class SharedConsul : IDisposable
{
    private const string DefaultPrefix = "meshkit/";

    public SharedConsul(IOptions<ControlPlaneOptions> options, ILoggerFactory loggerFactory)
    {
        var value = options.Value;
        ConsulOptions? connection = null;
        if (value.Consul.Address is { } address)
        {
            var prefix = WithSlash(value.Consul.KeyPrefix);
            PolicyPrefix = prefix + "policy/";
            RevocationsPrefix = prefix + "revocations/";
            LeaderKey = prefix + "leader";
            CanariesPrefix = prefix + "canaries/";
            CanaryTrafficPrefix = prefix + "canary-traffic/";
            WorkloadsPrefix = prefix + "workloads/";
            AdminTokenKey = prefix + "admin/token-sha256";
            CaReplicasPrefix = prefix + "ca/replicas/";
            connection = new ConsulOptions { Address = address, Token = value.Consul.Token, Datacenter = value.Consul.Datacenter, Wait = value.Consul.Wait };
            RevocationsMaxStaleness = value.Consul.RevocationsMaxStalenessFor(value.Consul.Wait);
        }
        else if (value.Policy.Consul is { Address: { } legacy } policy)
        {
            PolicyPrefix = WithSlash(policy.KeyPrefix);
            RevocationsPrefix = DefaultPrefix + "revocations/";
            LeaderKey = DefaultPrefix + "leader";
            CanariesPrefix = DefaultPrefix + "canaries/";
            CanaryTrafficPrefix = DefaultPrefix + "canary-traffic/";
            WorkloadsPrefix = DefaultPrefix + "workloads/";
            AdminTokenKey = DefaultPrefix + "admin/token-sha256";
            CaReplicasPrefix = DefaultPrefix + "ca/replicas/";
            connection = new ConsulOptions { Address = legacy, Token = policy.Token, Datacenter = policy.Datacenter, Wait = policy.Wait };

            // The bound is validated against ControlPlane:Consul:Wait; the older section has its own wait (a healthy replica
            // hears from Consul about once per wait), so the bound is at least twice that.
            RevocationsMaxStaleness = TimeSpan.FromTicks(Math.Max(value.Consul.RevocationsMaxStalenessFor(policy.Wait).Ticks, policy.Wait.Ticks * 2));
        }
        else
        {
            PolicyPrefix = DefaultPrefix + "policy/";
            RevocationsPrefix = DefaultPrefix + "revocations/";
            LeaderKey = DefaultPrefix + "leader";
            CanariesPrefix = DefaultPrefix + "canaries/";
            CanaryTrafficPrefix = DefaultPrefix + "canary-traffic/";
            WorkloadsPrefix = DefaultPrefix + "workloads/";
            AdminTokenKey = DefaultPrefix + "admin/token-sha256";
            CaReplicasPrefix = DefaultPrefix + "ca/replicas/";
        }

        Client = connection is null ? null : new ConsulClient(Options.Create(connection), loggerFactory);
    }

    /// <summary>Gets the client, or <see langword="null"/> when every replica keeps its own state on disk.</summary>
    public ConsulClient? Client { get; }

    /// <summary>Gets the KV prefix of central policy documents (one key per service).</summary>
    public string PolicyPrefix { get; }

    /// <summary>Gets the KV prefix of the revocation lists.</summary>
    public string RevocationsPrefix { get; }

    /// <summary>Gets the longest a replica issues by revocation lists it has not confirmed with Consul.</summary>
    public TimeSpan RevocationsMaxStaleness { get; }

    /// <summary>Gets the KV key whose session lock the replicas compete for (<c>&lt;KeyPrefix&gt;leader</c>).</summary>
    public string LeaderKey { get; }

    /// <summary>Gets the KV prefix where each replica publishes what its CA trusts and issues under (one key per replica).</summary>
    public string CaReplicasPrefix { get; }

    /// <summary>Gets the KV prefix of the canaries' states (one key per canary, written by the leader).</summary>
    public string CanariesPrefix { get; }

    /// <summary>Gets the KV prefix where each replica publishes the workloads that talk to it (one key per replica).</summary>
    public string WorkloadsPrefix { get; }

    /// <summary>Gets the KV key of the SHA-256 (hex) of the admin token the replicas share (the first replica's).</summary>
    public string AdminTokenKey { get; }

    /// <summary>Gets the KV prefix where each replica publishes the canary reports it received (totals, one key per replica).</summary>
    public string CanaryTrafficPrefix { get; }

    public void Dispose() => Client?.Dispose();

    private static string WithSlash(string prefix) => prefix.EndsWith('/') ? prefix : prefix + "/";
}
