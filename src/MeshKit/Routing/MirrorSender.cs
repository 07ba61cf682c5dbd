using MeshKit.Transport;
using Microsoft.Extensions.Logging;

namespace MeshKit.Routing;

/// <summary>
/// Sends mirror copies: fire-and-forget, at most <see cref="MaxConcurrent"/> at once (beyond that copies are dropped and
/// counted), never awaited by the caller and never changing its response. A copy goes to the mirror subset through
/// endpoint choice and the transport only (no retries), marked with <c>x-mesh-mirror: 1</c>. Requests whose body cannot
/// be read twice are not mirrored. A copy's timeout runs on the mesh's <see cref="TimeProvider"/>.
/// </summary>
internal sealed partial class MirrorSender(ILogger<MirrorSender> logger, TimeProvider time)
{
    public const int MaxConcurrent = 64;
    private int _inFlight;
    private long _dropped;
    private HttpMessageInvoker? _pipeline;

    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Sets the pipeline copies are sent through (endpoint choice and transport), once the client is built.</summary>
    public void Attach(HttpMessageHandler pipeline) => Interlocked.CompareExchange(ref _pipeline, new HttpMessageInvoker(pipeline, disposeHandler: false), null);

    public void TrySend(HttpRequestMessage original, MeshCall call, string subset, string subsetKey)
    {
        var pipeline = _pipeline;
        if (pipeline is null || !CanCopy(original))
        {
            return;
        }

        if (Interlocked.Increment(ref _inFlight) > MaxConcurrent)
        {
            Interlocked.Decrement(ref _inFlight);
            Interlocked.Increment(ref _dropped);
            return;
        }

        var copy = new HttpRequestMessage(original.Method, original.RequestUri) { Version = original.Version, VersionPolicy = original.VersionPolicy };
        foreach (var header in original.Headers)
        {
            copy.Headers.TryAddWithoutValidation(header.Key, header.Value);
        }

        copy.Headers.TryAddWithoutValidation("x-mesh-mirror", "1");
        var mirrorCall = new MeshCall(call.Destination, call.Method)
        {
            Policy = call.Policy,
            Route = call.Route,
            Subset = subset,
            SubsetReason = "mirror",
            IsMirror = true,
        };
        copy.Options.Set(MeshCall.OptionsKey, mirrorCall);

        // Off the caller's path entirely: the copy runs on the thread pool and nobody awaits it.
        _ = Task.Run(async () =>
        {
            try
            {
                using var timeout = new CancellationTokenSource(call.Policy?.Timeout ?? TimeSpan.FromSeconds(30), time);
                using var response = await pipeline.SendAsync(copy, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                LogMirrorFailed(logger, call.Destination.Host, subset, ex.GetBaseException().Message);
            }
            finally
            {
                copy.Dispose();
                Interlocked.Decrement(ref _inFlight);
            }
        });
    }

    private static bool CanCopy(HttpRequestMessage request) =>
        request.Content is null;

    [LoggerMessage(EventId = 7101, Level = LogLevel.Debug, Message = "A mirror copy to {Destination} subset {Subset} failed (the caller is not affected): {Error}")]
    private static partial void LogMirrorFailed(ILogger logger, string destination, string subset, string error);
}
