using MeshKit.Routing;
using MeshKit.Transport;
using Microsoft.Extensions.Logging;

namespace MeshKit.Client;

/// <summary>
/// Sends mirror copies: fire-and-forget, at most <see cref="MaxConcurrent"/> at once (beyond that copies are dropped and
/// counted), never awaited by the caller and never changing its response. A copy goes to the mirror subset through the
/// destination's own call path (<see cref="CallPath.SendMirrorAsync"/>: endpoint choice, one attempt, the transport),
/// marked with <c>x-mesh-mirror: 1</c>. A request body is copied once the call's first attempt has sent it whole and kept it
/// (up to <c>Mesh:Client:RequestBufferLimit</c>); a larger body is not mirrored, nor is an upgrade (a WebSocket).
/// </summary>
internal sealed partial class MirrorSender(ILogger<MirrorSender> logger)
{
    public const int MaxConcurrent = 64;
    private int _inFlight;
    private long _dropped;

    public long Dropped => Interlocked.Read(ref _dropped);

    public void TrySend(CallPath path, HttpRequestMessage original, RoutePolicy route, string subset)
    {
        // A body is copied only when the call kept it whole (see RequestBody); a larger body is not mirrored.
        byte[]? body = null;
        if (ProtocolUpgrade.Is(original))
        {
            return;
        }

        if (original.Content is not null && (original.Content is not RequestBody kept || (body = kept.CopyRecorded()) is null))
        {
            return;
        }

        if (Interlocked.Increment(ref _inFlight) > MaxConcurrent)
        {
            Interlocked.Decrement(ref _inFlight);
            Interlocked.Increment(ref _dropped);
            return;
        }

        var copy = new HttpRequestMessage(original.Method, original.RequestUri);
        foreach (var header in original.Headers)
        {
            copy.Headers.TryAddWithoutValidation(header.Key, header.Value);
        }

        copy.Headers.TryAddWithoutValidation("x-mesh-mirror", "1");
        if (body is not null)
        {
            copy.Content = new ByteArrayContent(body);
            foreach (var header in ((RequestBody)original.Content!).Inner.Headers.NonValidated)
            {
                copy.Content.Headers.TryAddWithoutValidation(header.Key, header.Value);
            }
        }

        var host = original.RequestUri?.Host ?? "?";

        // Off the caller's path entirely: the copy runs on the thread pool and nobody awaits it.
        _ = Task.Run(async () =>
        {
            try
            {
                await path.SendMirrorAsync(copy, route, subset).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                LogMirrorFailed(logger, host, subset, ex.GetBaseException().Message);
            }
            finally
            {
                copy.Dispose();
                Interlocked.Decrement(ref _inFlight);
            }
        });
    }

    [LoggerMessage(EventId = 7101, Level = LogLevel.Debug, Message = "A mirror copy to {Destination} subset {Subset} failed (the caller is not affected): {Error}")]
    private static partial void LogMirrorFailed(ILogger logger, string destination, string subset, string error);
}
