using System.Diagnostics;
using MeshKit.Balancing;
using MeshKit.Telemetry;
using MeshKit.Transport;

namespace MeshKit.Client;

/// <summary>
/// The end of a gRPC call whose status comes in trailers (every call that sent response messages): MeshKit hands the
/// response to the gRPC client at its headers, wrapped so that when the body has been read to its end (or the response is
/// disposed) the <c>grpc-status</c> of the trailers is read. Then, once: the endpoint's outcome (a status in
/// <c>OutlierDetection:GrpcStatus</c> is a failure, as a 5xx) goes to the balancer and the outlier detector, the golden
/// metrics are recorded with <c>rpc.grpc.status_code</c> and the call's duration to its end, and the logical span ends with
/// the status. Only gRPC responses pay for it.
/// </summary>
internal sealed class GrpcCallEnd
{
    private readonly EndpointStage _endpoints;
    private readonly EndpointState _state;
    private readonly EndpointChoice _choice;
    private readonly Policy.GrpcStatusSet _failures;
    private HttpResponseMessage? _response;
    private GoldenMetrics _metrics;
    private Activity? _activity;
    private int _ended;

    public GrpcCallEnd(EndpointStage endpoints, EndpointState state, EndpointChoice choice, Policy.GrpcStatusSet failures)
    {
        _endpoints = endpoints;
        _state = state;
        _choice = choice;
        _failures = failures;
    }

    /// <summary>Wraps the response's body; the golden metrics are recorded with the status, <paramref name="activity"/> ends with it.</summary>
    public void Attach(HttpResponseMessage response, in GoldenMetrics metrics, Activity? activity)
    {
        _response = response;
        _metrics = metrics;
        _activity = activity;
        response.Content = new Body(response.Content, this);
    }

    /// <summary>Ends the call without a response to wrap (it failed before being handed on): the endpoint's outcome only.</summary>
    public void Abandon() => End(GrpcStatus.None, attached: false);

    private void End(int status, bool attached)
    {
        if (Interlocked.Exchange(ref _ended, 1) != 0)
        {
            return;
        }

        _endpoints.EndWithStatus(_state, _choice, _failures.Contains(status));
        if (!attached)
        {
            return;
        }

        _metrics.Record(status);
        if (_activity is { } activity)
        {
            if (status != GrpcStatus.None)
            {
                activity.SetTag("rpc.system", "grpc");
                activity.SetTag(MeshTelemetry.Attributes.GrpcStatusCode, TagValues.Box(status));
                if (status != 0)
                {
                    activity.SetStatus(ActivityStatusCode.Error);
                }
            }

            activity.Dispose();
        }
    }

    private void EndFromTrailers()
    {
        End(_response is { } response ? GrpcStatus.ReadCode(response.TrailingHeaders) : GrpcStatus.None, attached: true);
    }

    /// <summary>What the call's golden metrics are recorded with once its status is known (the duration runs to then).</summary>
    internal readonly record struct GoldenMetrics(
        MeshMetrics Metrics, TimeProvider Time, string Source, string Destination, string? Subset, string StatusClass, string Outcome, long Started, string? CanaryRoute, string DestinationHost)
    {
        public void Record(int status)
        {
            if (Metrics is null)
            {
                return;
            }

            var seconds = Time.GetElapsedTime(Started).TotalSeconds;
            Metrics.RecordClientRequest(Source, Destination, Subset, StatusClass, Outcome, seconds, status);
            if (CanaryRoute is not null)
            {
                // The last attempt of a gRPC call whose status came in trailers: counted now, with that status.
                Metrics.CanaryTraffic.Record(DestinationHost, CanaryRoute, Subset, GrpcStatus.IsServerError(status), seconds);
            }
        }
    }

    /// <summary>The response body as the gRPC client reads it: ends the call at its end or when disposed.</summary>
    private sealed class Body(HttpContent inner, GrpcCallEnd end) : WrappedResponseContent(inner)
    {
        protected override Stream Wrap(Stream inner) => new EndingStream(inner, end);

        protected override void Dispose(bool disposing)
        {
            base.Dispose(disposing);
            if (disposing)
            {
                end.EndFromTrailers();
            }
        }
    }

    private sealed class EndingStream(Stream inner, GrpcCallEnd end) : ReadOnlyWrapperStream(inner)
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var reading = Inner.ReadAsync(buffer, cancellationToken);
            return reading.IsCompletedSuccessfully ? new ValueTask<int>(Ended(reading.Result, buffer.Length)) : AwaitReadAsync(reading, buffer.Length);
        }

        protected override void Dispose(bool disposing)
        {
            base.Dispose(disposing);
            if (disposing)
            {
                end.EndFromTrailers();
            }
        }

        private async ValueTask<int> AwaitReadAsync(ValueTask<int> reading, int asked) => Ended(await reading.ConfigureAwait(false), asked);

        private int Ended(int read, int asked)
        {
            if (read == 0 && asked > 0)
            {
                end.EndFromTrailers();
            }

            return read;
        }
    }
}
