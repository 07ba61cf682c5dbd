using System.Collections.Concurrent;
using MeshKit.Balancing;
using MeshKit.Discovery;
using MeshKit.Identity;
using MeshKit.Policy;
using MeshKit.Resilience;
using MeshKit.Routing;
using MeshKit.Telemetry;
using MeshKit.Transport;
using Microsoft.Extensions.Options;

namespace MeshKit.Client;

/// <summary>
/// Builds the <see cref="CallPath"/> of a destination under a policy version, and keeps the current one per destination:
/// the first call after a policy change builds the new path (a few small objects); every other call reads it with one
/// dictionary lookup and one reference comparison. The resilience stage comes from <see cref="ResilienceStages"/>, so
/// a destination whose resilience settings did not change keeps its budget and limits across reloads. Mirror copies go
/// through the same path (<see cref="CallPath.SendMirrorAsync"/>).
/// </summary>
internal sealed class CallPathBuilder(
    PolicyWatcher policies,
    ResilienceStages resilience,
    MeshEndpointRegistry registry,
    EndpointStateRegistry states,
    MeshConnectionPools pools,
    WorkloadIdentitySource identity,
    MeshMetrics metrics,
    MirrorSender mirror,
    MeshRandom random,
    TimeProvider time,
    IOptions<MeshOptions> options)
{
    private readonly ConcurrentDictionary<string, Built> _paths = new(StringComparer.Ordinal);
    private readonly MeshClientSettings _settings = new(options.Value.Transport.HttpVersion, options.Value.Service.Name ?? "unknown", options.Value.Client.RequestBufferLimit);

    /// <summary>Gets the call path of a destination under the policy in force.</summary>
    public CallPath For(MeshDestination destination)
    {
        var snapshot = policies.Current;
        if (_paths.TryGetValue(destination.Host, out var built) && ReferenceEquals(built.Snapshot, snapshot))
        {
            return built.Path;
        }

        var path = Build(destination, snapshot);
        _paths[destination.Host] = new Built(snapshot, path);
        return path;
    }

    private CallPath Build(MeshDestination destination, PolicySnapshot snapshot)
    {
        var host = destination.Host;
        var policy = snapshot.For(host);
        return new CallPath(
            destination,
            new RouteStage(snapshot.SubsetHeader, policy, random),
            resilience.Get(host, policy),
            new EndpointStage(host, policy, registry, states, random, metrics),
            pools,
            identity,
            metrics,
            mirror,
            _settings,
            time);
    }

    private sealed record Built(PolicySnapshot Snapshot, CallPath Path);
}
