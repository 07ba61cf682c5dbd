using MeshKit.Discovery;

namespace MeshKit.Transport;

/// <summary>
/// The state of one logical mesh call, carried in <see cref="HttpRequestMessage.Options"/> from the outermost mesh handler
/// to the transport. Each stage reads what the stages before it decided, and knows nothing else about them.
/// </summary>
public sealed class MeshCall
{
    /// <summary>The request option under which the call is stored.</summary>
    public static readonly HttpRequestOptionsKey<MeshCall> OptionsKey = new("MeshKit.Call");

    internal MeshCall(MeshDestination destination)
    {
        Destination = destination;
    }

    /// <summary>Gets the destination.</summary>
    public MeshDestination Destination { get; }

    /// <summary>Gets the endpoint chosen for the current attempt, as <c>address:port</c>.</summary>
    public string? EndpointAddress => Endpoint?.Key;

    /// <summary>Gets the number of the current attempt (0 for the first).</summary>
    public int Attempt { get; internal set; }

    internal MeshEndpoint? Endpoint { get; set; }

    /// <summary>Gets the mesh call of a request, if it is one.</summary>
    /// <param name="request">The request.</param>
    /// <returns>The call, or <see langword="null"/> for a request that is not a mesh call.</returns>
    public static MeshCall? Of(HttpRequestMessage request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return request.Options.TryGetValue(OptionsKey, out var call) ? call : null;
    }
}

/// <summary>
/// A mesh call that could not be made, with a machine-readable reason: no endpoints for the destination, no valid
/// workload identity. Derives from <see cref="HttpRequestException"/> so callers that handle transport errors handle it.
/// </summary>
public sealed class MeshCallException : HttpRequestException
{
    /// <summary>Initializes a new instance.</summary>
    /// <param name="reason">A machine-readable reason, such as <c>no_endpoints</c>.</param>
    /// <param name="message">What happened and what to check.</param>
    /// <param name="inner">The cause, if any.</param>
    public MeshCallException(string reason, string message, Exception? inner = null)
        : base(message, inner)
    {
        Reason = reason;
    }

    /// <summary>Gets the machine-readable reason.</summary>
    public string Reason { get; }
}
