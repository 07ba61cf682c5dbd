namespace MeshKit.Consul;

/// <summary>The passing instances of a service as of one Consul answer. Immutable.</summary>
public sealed class ConsulServiceSet
{
    /// <summary>Initializes a new instance.</summary>
    /// <param name="serviceName">The service name.</param>
    /// <param name="instances">The passing instances.</param>
    /// <param name="index">The Consul index of the answer.</param>
    /// <param name="receivedAt">When the answer arrived.</param>
    public ConsulServiceSet(string serviceName, IReadOnlyList<ConsulServiceEntry> instances, ulong index, DateTimeOffset receivedAt)
    {
        ServiceName = serviceName;
        Instances = instances;
        Index = index;
        ReceivedAt = receivedAt;
    }

    /// <summary>Gets the service name.</summary>
    public string ServiceName { get; }

    /// <summary>Gets the passing instances; empty when Consul lists none.</summary>
    public IReadOnlyList<ConsulServiceEntry> Instances { get; }

    /// <summary>Gets the Consul index of the answer.</summary>
    public ulong Index { get; }

    /// <summary>Gets when the answer arrived.</summary>
    public DateTimeOffset ReceivedAt { get; }
}
