using System.Diagnostics;
using System.Net;
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
    private Action<int>? _record;
    private Activity? _activity;
    private int _ended;

    public GrpcCallEnd(EndpointStage endpoints, EndpointState state, EndpointChoice choice, Policy.GrpcStatusSet failures)
    {
        _endpoints = endpoints;
        _state = state;
        _choice = choice;
        _failures = failures;
    }

    /// <summary>Wraps the response's body; <paramref name="record"/> records the golden metrics with the status, <paramref name="activity"/> ends with it.</summary>
    public void Attach(HttpResponseMessage response, Action<int> record, Activity? activity)
    {
        _response = response;
        _record = record;
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

        _record?.Invoke(status);
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
        var status = GrpcStatus.None;
        if (_response is { } response && response.TrailingHeaders.NonValidated.TryGetValues("grpc-status", out var values))
        {
            foreach (var value in values)
            {
                status = int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var code) ? code : GrpcStatus.None;
                break;
            }
        }

        End(status, attached: true);
    }

    /// <summary>The response body as the gRPC client reads it: ends the call at its end or when disposed.</summary>
    private sealed class Body : HttpContent
    {
        private readonly HttpContent _inner;
        private readonly GrpcCallEnd _end;

        public Body(HttpContent inner, GrpcCallEnd end)
        {
            _inner = inner;
            _end = end;
            foreach (var header in inner.Headers.NonValidated)
            {
                Headers.TryAddWithoutValidation(header.Key, header.Value);
            }
        }

        protected override async Task<Stream> CreateContentReadStreamAsync(CancellationToken cancellationToken) =>
            new EndingStream(await _inner.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), _end);

        protected override Task<Stream> CreateContentReadStreamAsync() => CreateContentReadStreamAsync(CancellationToken.None);

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            await _inner.CopyToAsync(stream, cancellationToken).ConfigureAwait(false);
            _end.EndFromTrailers();
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _inner.Dispose();
                _end.EndFromTrailers();
            }

            base.Dispose(disposing);
        }
    }

    private sealed class EndingStream(Stream inner, GrpcCallEnd end) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Ended(inner.Read(buffer, offset, count), count);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var reading = inner.ReadAsync(buffer, cancellationToken);
            return reading.IsCompletedSuccessfully ? new ValueTask<int>(Ended(reading.Result, buffer.Length)) : AwaitReadAsync(reading, buffer.Length);
        }

        private async ValueTask<int> AwaitReadAsync(ValueTask<int> reading, int asked) => Ended(await reading.ConfigureAwait(false), asked);

        public override async Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            Ended(await inner.ReadAsync(buffer.AsMemory(offset, count), cancellationToken).ConfigureAwait(false), count);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
                end.EndFromTrailers();
            }

            base.Dispose(disposing);
        }

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
