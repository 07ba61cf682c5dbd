namespace MeshKit.Consul;

/// <summary>What Consul says about an answer to a read: the headers of a blocking-capable endpoint.</summary>
/// <param name="Index">The <c>X-Consul-Index</c> of the answer: the state it reflects; pass it back to block for a change.</param>
/// <param name="KnownLeader">The <c>X-Consul-KnownLeader</c> header: whether the answering server knew a leader.</param>
/// <param name="LastContact">The <c>X-Consul-LastContact</c> header: how long since the answering server heard from the leader.</param>
public readonly record struct ConsulQueryMeta(ulong Index, bool KnownLeader, TimeSpan LastContact);
