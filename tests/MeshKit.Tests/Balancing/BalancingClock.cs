using System.Net;
using MeshKit.Balancing;
using MeshKit.Discovery;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace MeshKit.Tests.Balancing;

/// <summary>Endpoint state on a virtual clock: a <see cref="FakeTimeProvider"/> and the registry that reads it.</summary>
internal sealed class BalancingClock : IAsyncDisposable
{
    public const string Destination = "orders";

    private readonly MeshEndpointRegistry _endpoints;

    public BalancingClock()
    {
        _endpoints = new([], new MeshDestinationNames("default", [], null), Time, NullLogger<MeshEndpointRegistry>.Instance);
        States = new EndpointStateRegistry(_endpoints, Time);
    }

    public FakeTimeProvider Time { get; } = new();

    public EndpointStateRegistry States { get; }

    public static MeshEndpoint[] Pool(int size) =>
        [.. Enumerable.Range(1, size).Select(i => new MeshEndpoint(new IPEndPoint(IPAddress.Parse($"10.0.0.{i}"), 8443), MeshEndpointMetadata.Empty))];

    /// <summary>Endpoints 10.0.0.1, 10.0.0.2, ... of the given weights (in the order given).</summary>
    public static MeshEndpoint[] Weighted(params int[] weights) =>
        [.. weights.Select((weight, i) => new MeshEndpoint(
            new IPEndPoint(IPAddress.Parse($"10.0.0.{i + 1}"), 8443),
            MeshEndpointMetadata.Empty with { Weight = weight }))];

    public PeakEwmaPowerOfTwoChoices PowerOfTwo(MeshRandom random) => new(Destination, States, random);

    public EndpointState State(MeshEndpoint endpoint) => States.Get(Destination, endpoint.Key);

    public ValueTask DisposeAsync() => _endpoints.DisposeAsync();
}
