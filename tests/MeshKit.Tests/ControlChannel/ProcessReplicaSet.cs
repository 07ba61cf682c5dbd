using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using MeshKit.ControlChannel;
using MeshKit.Identity;
using MeshKit.Testing;
using MeshKit.Testing.Consul;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Tests.ControlChannel;

/// <summary>
/// Control-service replicas as real processes (<see cref="ControlPlaneProcess"/>) against one Consul double in this
/// process, set up like <see cref="ReplicaSet"/>'s (same settings, same trust), so that a test can kill one with SIGKILL
/// or restart them one by one. Workloads run in this process; the replicas register in Consul as <c>mesh-control</c>.
/// </summary>
public sealed class ProcessReplicaSet : IAsyncDisposable
{
    private readonly IAsyncDisposable _trust;

    private ProcessReplicaSet(ConsulDouble consul, IReadOnlyList<ControlPlaneProcess> replicas, string trustBundlePath, IAsyncDisposable trust)
    {
        Consul = consul;
        Replicas = replicas;
        TrustBundlePath = trustBundlePath;
        _trust = trust;
    }

    public ConsulDouble Consul { get; }

    public IReadOnlyList<ControlPlaneProcess> Replicas { get; }

    /// <summary>Gets the trust bundle workloads trust the replicas with (<c>Mesh:ControlPlane:TrustBundlePath</c>).</summary>
    public string TrustBundlePath { get; }

    /// <summary>Starts a Consul double and <paramref name="count"/> replica processes (at the same time: each costs a process start).</summary>
    public static async Task<ProcessReplicaSet> StartAsync(int count = 3)
    {
        var consul = await ConsulDouble.StartAsync();
        var settings = Enumerable.Range(0, count).Select(_ => ReplicaSet.Settings(consul)).ToList();
        IAsyncDisposable? trust = null;
        var starting = new List<Task<ControlPlaneProcess>>();
        try
        {
            (trust, var bundle) = await SameTrustAsync(settings);
            starting.AddRange(settings.Select(s => ControlPlaneProcess.StartAsync(s)));
            var replicas = await Task.WhenAll(starting);
            return new ProcessReplicaSet(consul, replicas, bundle, trust);
        }
        catch
        {
            foreach (var start in starting.Where(s => s.IsCompletedSuccessfully))
            {
                await start.Result.DisposeAsync();
            }

            if (trust is not null)
            {
                await trust.DisposeAsync();
            }

            await consul.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// The one place where the replicas get their trust: an operator's root kept in this process, and an intermediate of
    /// its own for every replica (no replica holds the root's key). Returns what must live as long as the replicas, and
    /// the bundle workloads trust.
    /// </summary>
    private static Task<(IAsyncDisposable Keep, string TrustBundlePath)> SameTrustAsync(IReadOnlyList<Dictionary<string, string?>> replicas)
    {
        var ca = new OperatorCa();
        foreach (var settings in replicas)
        {
            ca.IntermediateFor(settings);
        }

        return Task.FromResult<(IAsyncDisposable, string)>((ca, ca.RootCertificatePath));
    }

    /// <summary>Gets the index of the replica a workload talks to now (-1 before it talked to any).</summary>
    public int Using(MeshAppHost workload)
    {
        var current = workload.Services.GetRequiredService<ControlPlaneClient>().CurrentReplica;
        for (var i = 0; i < Replicas.Count; i++)
        {
            if (Replicas[i].BaseAddress == current)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>
    /// Takes replica <paramref name="replica"/> away with <paramref name="outage"/> (a kill, a stop) and returns how long each
    /// of <paramref name="workloads"/> that used it took to get its first answer from another replica, from the outage's start.
    /// </summary>
    public async Task<IReadOnlyList<(MeshAppHost Workload, TimeSpan Failover)>> TimeFailoverAsync(int replica, Func<Task> outage, params MeshAppHost[] workloads)
    {
        var moving = workloads.Where(w => Using(w) == replica).ToList();
        var times = new TimeSpan?[moving.Count];
        var clock = Stopwatch.StartNew();
        var taking = outage();
        await Eventually.WaitAsync(
            () =>
            {
                for (var i = 0; i < moving.Count; i++)
                {
                    if (times[i] is null && Using(moving[i]) is var now && now >= 0 && now != replica)
                    {
                        times[i] = clock.Elapsed;
                    }
                }

                return times.All(t => t is not null);
            },
            TimeSpan.FromSeconds(10),
            $"{string.Join(", ", moving.Select(w => w.Service))} to leave replica {replica}",
            TimeSpan.FromMilliseconds(2));
        await taking;
        return [.. moving.Select((w, i) => (w, times[i]!.Value))];
    }

    /// <summary>
    /// Starts recording, for each of <paramref name="workloads"/>, every certificate it receives and the replica it talked to
    /// then (the one that signed it).
    /// </summary>
    public RenewalLog RecordRenewals(params MeshAppHost[] workloads) => new(this, workloads);

    /// <summary>Gets the replica id a replica process goes by in Consul and in <c>/v1/workloads</c>.</summary>
    public static async Task<string> ReplicaIdAsync(ControlPlaneProcess replica)
    {
        using var admin = replica.CreateAdminClient();
        var leadership = await admin.GetFromJsonAsync<JsonElement>("v1/leadership", TestContext.Current.CancellationToken);
        return leadership.GetProperty("replica").GetString()!;
    }

    /// <summary>Gets whether the replica process leads (holds the Consul lock).</summary>
    public static async Task<bool> IsLeaderAsync(ControlPlaneProcess replica)
    {
        using var admin = replica.CreateAdminClient();
        var leadership = await admin.GetFromJsonAsync<JsonElement>("v1/leadership", TestContext.Current.CancellationToken);
        return leadership.GetProperty("isLeader").GetBoolean();
    }

    /// <summary>Gets the replica id <paramref name="replica"/>'s workload registry names for <paramref name="instance"/> (null if not listed).</summary>
    public static async Task<string?> ListedReplicaAsync(ControlPlaneProcess replica, string instance)
    {
        using var admin = replica.CreateAdminClient();
        var list = await admin.GetFromJsonAsync<JsonElement>("v1/workloads", TestContext.Current.CancellationToken);
        foreach (var workload in list.GetProperty("workloads").EnumerateArray())
        {
            if (workload.TryGetProperty("instance", out var i) && i.GetString() == instance)
            {
                return workload.TryGetProperty("replica", out var r) ? r.GetString() : null;
            }
        }

        return null;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var replica in Replicas)
        {
            await replica.DisposeAsync();
        }

        await _trust.DisposeAsync();
        await Consul.DisposeAsync();
    }

    /// <summary>The certificates workloads received, each with the replica that signed it and when.</summary>
    public sealed class RenewalLog : IDisposable
    {
        private readonly List<(WorkloadIdentitySource Source, Action<WorkloadIdentity> Handler)> _subscriptions = [];
        private readonly Lock _gate = new();
        private readonly List<Renewal> _renewals = [];

        internal RenewalLog(ProcessReplicaSet set, MeshAppHost[] workloads)
        {
            foreach (var workload in workloads)
            {
                var source = workload.Services.GetRequiredService<WorkloadIdentitySource>();
                void Handler(WorkloadIdentity identity)
                {
                    lock (_gate)
                    {
                        _renewals.Add(new Renewal(workload.Service, set.Using(workload), DateTimeOffset.UtcNow));
                    }
                }

                source.Changed += Handler;
                _subscriptions.Add((source, Handler));
            }
        }

        /// <summary>Gets the renewals of <paramref name="service"/> since <paramref name="since"/>.</summary>
        public IReadOnlyList<Renewal> Of(string service, DateTimeOffset since)
        {
            lock (_gate)
            {
                return [.. _renewals.Where(r => r.Service == service && r.At >= since)];
            }
        }

        /// <summary>Gets every renewal since <paramref name="since"/>.</summary>
        public IReadOnlyList<Renewal> Since(DateTimeOffset since)
        {
            lock (_gate)
            {
                return [.. _renewals.Where(r => r.At >= since)];
            }
        }

        public void Dispose()
        {
            foreach (var (source, handler) in _subscriptions)
            {
                source.Changed -= handler;
            }
        }
    }

    /// <summary>A certificate a workload received, from replica <see cref="Replica"/> (index into <see cref="Replicas"/>).</summary>
    public sealed record Renewal(string Service, int Replica, DateTimeOffset At);
}
