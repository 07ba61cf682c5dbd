using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using MeshKit.ControlChannel;
using MeshKit.Testing;
using MeshKit.Testing.Consul;
using MeshKit.Tests.Identity;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Tests.ControlChannel;

/// <summary>
/// Control-service replicas against one Consul double: they share central policy and revocations in its KV store, each
/// signs with an intermediate of its own under one operator root (<see cref="OperatorCa"/>; no replica holds the root's
/// key) and they register in it as <c>mesh-control</c>.
/// </summary>
public sealed class ReplicaSet : IAsyncDisposable
{
    public const string ConsulService = "mesh-control";

    private ReplicaSet(ConsulDouble consul, OperatorCa ca, IReadOnlyList<ControlPlaneHost> replicas)
    {
        Consul = consul;
        Ca = ca;
        Replicas = replicas;
    }

    /// <summary>Gets the operator's root: every replica issues with an intermediate of its own signed by it.</summary>
    public OperatorCa Ca { get; }

    public ConsulDouble Consul { get; }

    public IReadOnlyList<ControlPlaneHost> Replicas { get; }

    /// <summary>Starts a Consul double and <paramref name="count"/> replicas.</summary>
    public static async Task<ReplicaSet> StartAsync(int count = 3, Action<int, Dictionary<string, string?>>? configure = null)
    {
        var consul = await ConsulDouble.StartAsync();
        var ca = new OperatorCa();
        var replicas = new List<ControlPlaneHost>();
        try
        {
            for (var i = 0; i < count; i++)
            {
                var settings = ca.IntermediateFor(Settings(consul));
                configure?.Invoke(i, settings);
                replicas.Add(await ControlPlaneHost.StartAsync(settings));
            }
        }
        catch
        {
            foreach (var replica in replicas)
            {
                await replica.DisposeAsync();
            }

            await consul.DisposeAsync();
            ca.Dispose();
            throw;
        }

        return new ReplicaSet(consul, ca, replicas);
    }

    /// <summary>A replica's settings: the test join token, Consul as the shared store with a 1 s wait.</summary>
    public static Dictionary<string, string?> Settings(ConsulDouble consul)
    {
        var settings = MeshTestBed.TokenSettings();
        settings["ControlPlane:Consul:Address"] = consul.Address.ToString();
        settings["ControlPlane:Consul:Wait"] = "00:00:01";
        return settings;
    }

    /// <summary>
    /// Makes a replica sign under <paramref name="first"/>'s generated root, so workloads trust both alike: the test plays the
    /// operator, signs an intermediate with that root and gives the replica the intermediate, never the root's key.
    /// </summary>
    public static Dictionary<string, string?> SameRoot(Dictionary<string, string?> settings, ControlPlaneHost first)
    {
        var ca = Path.Combine(first.DataDirectory, "ca");
        var root = Directory.GetFiles(ca, "*.crt.pem").Single();
        var files = OperatorCa.WriteIntermediate(
            root, root.Replace(".crt.pem", ".key.pem", StringComparison.Ordinal), ControlPlaneHost.TrustDomain,
            Path.Combine(first.DataDirectory, "operator", Guid.NewGuid().ToString("N")), "Replica intermediate");
        settings["ControlPlane:Ca:CertificatePath"] = files.CertificatePath;
        settings["ControlPlane:Ca:KeyPath"] = files.KeyPath;
        settings["ControlPlane:Ca:TrustBundlePath"] = root;
        return settings;
    }

    /// <summary>A workload's settings naming every replica: <c>Mesh:ControlPlane:Addresses:0..n</c>.</summary>
    public Dictionary<string, string?> AddressSettings(IEnumerable<KeyValuePair<string, string?>>? more = null)
    {
        var settings = new Dictionary<string, string?>();
        for (var i = 0; i < Replicas.Count; i++)
        {
            settings[$"Mesh:ControlPlane:Addresses:{i}"] = Replicas[i].BaseAddress.ToString();
        }

        foreach (var (key, value) in more ?? [])
        {
            settings[key] = value;
        }

        return settings;
    }

    /// <summary>Gets the replica a workload talks to now.</summary>
    public ControlPlaneHost Using(MeshAppHost workload)
    {
        var current = workload.Services.GetRequiredService<ControlPlaneClient>().CurrentReplica;
        return Replicas.Single(r => r.BaseAddress == current);
    }

    /// <summary>
    /// Stops <paramref name="replica"/> gracefully and returns how long each of <paramref name="workloads"/> that used it took
    /// to get its first answer from another replica, counted from the moment the stop began.
    /// </summary>
    public static async Task<IReadOnlyList<TimeSpan>> StopAndTimeFailoverAsync(ControlPlaneHost replica, params MeshAppHost[] workloads)
    {
        var moving = workloads.Where(w => w.Services.GetRequiredService<ControlPlaneClient>().CurrentReplica == replica.BaseAddress).ToList();
        var times = new TimeSpan?[moving.Count];
        var stopwatch = Stopwatch.StartNew();
        var stopping = replica.StopAsync();
        await Eventually.WaitAsync(
            () =>
            {
                for (var i = 0; i < moving.Count; i++)
                {
                    if (times[i] is null && moving[i].Services.GetRequiredService<ControlPlaneClient>().CurrentReplica != replica.BaseAddress)
                    {
                        times[i] = stopwatch.Elapsed;
                    }
                }

                return times.All(t => t is not null);
            },
            TimeSpan.FromSeconds(10),
            $"{string.Join(", ", moving.Select(w => w.Service))} to leave the stopped replica",
            TimeSpan.FromMilliseconds(2));
        await stopping;
        return [.. times.Select(t => t!.Value)];
    }

    /// <summary>Puts a central policy document through the admin API of <paramref name="replica"/>; returns its version.</summary>
    public static async Task<string> PutPolicyAsync(ControlPlaneHost replica, string service, string json)
    {
        using var admin = replica.CreateAdminClient();
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        using var response = await admin.PutAsync($"v1/policy/{service}", content, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("version").GetString()!;
    }

    /// <summary>Whether <paramref name="replica"/>'s workload registry has heard from <paramref name="instance"/> (it polls there).</summary>
    public static async Task<bool> HasPolledAsync(ControlPlaneHost replica, string instance)
    {
        using var admin = replica.CreateAdminClient();
        var list = await admin.GetFromJsonAsync<JsonElement>("v1/workloads", TestContext.Current.CancellationToken);
        return list.GetProperty("workloads").EnumerateArray().Any(w => w.TryGetProperty("instance", out var i) && i.GetString() == instance);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var replica in Replicas)
        {
            await replica.DisposeAsync();
        }

        await Consul.DisposeAsync();
        Ca.Dispose();
    }
}
