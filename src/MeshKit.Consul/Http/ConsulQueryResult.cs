namespace MeshKit.Consul;

/// <summary>A value read from Consul with the metadata of the answer.</summary>
/// <typeparam name="T">The value's type.</typeparam>
public sealed class ConsulQueryResult<T>
{
    /// <summary>Initializes a new instance.</summary>
    /// <param name="value">The value read.</param>
    /// <param name="meta">The answer's index and leader headers.</param>
    /// <param name="receivedAt">When the answer arrived.</param>
    public ConsulQueryResult(T value, ConsulQueryMeta meta, DateTimeOffset receivedAt)
    {
        Value = value;
        Meta = meta;
        ReceivedAt = receivedAt;
    }

    /// <summary>Gets the value read.</summary>
    public T Value { get; }

    /// <summary>Gets the answer's index and leader headers.</summary>
    public ConsulQueryMeta Meta { get; }

    /// <summary>Gets the index of the answer (<c>X-Consul-Index</c>).</summary>
    public ulong Index => Meta.Index;

    /// <summary>Gets when the answer arrived.</summary>
    public DateTimeOffset ReceivedAt { get; }
}
