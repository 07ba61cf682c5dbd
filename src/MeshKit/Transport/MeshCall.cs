using MeshKit.Discovery;

namespace MeshKit.Transport;

/// <summary>
/// The state of one logical mesh call, carried in <see cref="HttpRequestMessage.Options"/> from the outermost mesh handler
/// to the transport. Each stage reads what the stages before it decided, and knows nothing else about them.
/// </summary>
internal sealed class MeshCall
{
    /// <summary>The request option under which the call is stored.</summary>
    public static readonly HttpRequestOptionsKey<MeshCall> OptionsKey = new("MeshKit.Call");

    internal MeshCall(MeshDestination destination, HttpMethod method)
    {
        Destination = destination;
        Method = method;
    }

    /// <summary>Gets the request method.</summary>
    public HttpMethod Method { get; }

    /// <summary>Gets the destination.</summary>
    public MeshDestination Destination { get; }

    /// <summary>Gets the endpoint chosen for the current attempt, as <c>address:port</c>.</summary>
    public string? EndpointAddress => Endpoint?.Key;

    /// <summary>Gets the number of the current attempt (0 for the first).</summary>
    public int Attempt { get; internal set; }

    internal MeshEndpoint? Endpoint { get; set; }

    /// <summary>Gets the endpoints the current attempt chose among (the subset), for outlier detection.</summary>
    internal MeshEndpoint[] Candidates { get; set; } = [];

    /// <summary>Gets the destination's policy in force for this call.</summary>
    public Policy.DestinationPolicy? Policy { get; internal set; }

    /// <summary>Gets the route the call matched (<c>default</c> when none did).</summary>
    public Routing.RoutePolicy? Route { get; internal set; }

    /// <summary>Gets the subset the call goes to, or <see langword="null"/> for every endpoint.</summary>
    public string? Subset { get; internal set; }

    /// <summary>Gets why the subset was chosen: <c>split</c>, <c>header</c>, <c>mirror</c> or <c>none</c>.</summary>
    public string SubsetReason { get; internal set; } = "none";

    /// <summary>Gets why the current attempt is a retry (<c>connect_failure</c>, <c>5xx</c>, <c>timeout</c>), or <see langword="null"/>.</summary>
    public string? RetryReason { get; internal set; }

    /// <summary>Gets the endpoint the previous attempt failed on, which the next attempt avoids where it can.</summary>
    public string? LastFailedEndpoint { get; internal set; }

    /// <summary>Gets when the whole call must be done, as a timestamp of the mesh's <see cref="TimeProvider"/> (0 when unknown).</summary>
    internal long DeadlineTimestamp { get; set; }

    /// <summary>Gets whether this request is a mirror copy.</summary>
    public bool IsMirror { get; internal set; }

    /// <summary>Gets the mesh call of a request, if it is one.</summary>
    /// <param name="request">The request.</param>
    /// <returns>The call, or <see langword="null"/> for a request that is not a mesh call.</returns>
    public static MeshCall? Of(HttpRequestMessage request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return request.Options.TryGetValue(OptionsKey, out var call) ? call : null;
    }
}
