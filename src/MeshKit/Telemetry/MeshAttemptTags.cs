namespace MeshKit.Telemetry;

/// <summary>
/// What .NET's own per-attempt HttpClient span is enriched with (destination, route, subset, attempt, endpoint, retry
/// reason). Carried in the request's options, and set only while someone listens to MeshKit's activity source, so a call
/// with tracing off allocates nothing for it.
/// </summary>
internal sealed class MeshAttemptTags
{
    /// <summary>The request option that carries the tags.</summary>
    public static readonly HttpRequestOptionsKey<MeshAttemptTags> OptionsKey = new("MeshKit.Attempt");

    public MeshAttemptTags(string destinationService) => DestinationService = destinationService;

    public string DestinationService { get; }

    public string? Route { get; set; }

    public string? Subset { get; set; }

    public int Attempt { get; set; }

    public string? Endpoint { get; set; }

    public string? PeerAddress { get; set; }

    public int PeerPort { get; set; }

    public string? RetryReason { get; set; }
}
