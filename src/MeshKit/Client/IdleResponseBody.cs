using System.Net;
using MeshKit.Transport;

namespace MeshKit.Client;

/// <summary>
/// A response body under the destination's <c>IdleTimeout</c> (off by default): every read must deliver data within the
/// timeout, or the read is cancelled (which ends the HTTP/2 stream) and fails with a <see cref="MeshCallException"/>
/// reason <c>idle_timeout</c> naming the setting. Only responses of destinations with an idle timeout pay for it.
/// </summary>
internal sealed class IdleResponseBody : HttpContent
{
    private readonly HttpContent _inner;
    private readonly TimeSpan _idle;
    private readonly TimeProvider _time;
    private readonly string _host;

    public IdleResponseBody(HttpContent inner, TimeSpan idle, TimeProvider time, string host)
    {
        _inner = inner;
        _idle = idle;
        _time = time;
        _host = host;
        foreach (var header in inner.Headers.NonValidated)
        {
            Headers.TryAddWithoutValidation(header.Key, header.Value);
        }
    }

    protected override async Task<Stream> CreateContentReadStreamAsync(CancellationToken cancellationToken) =>
        new IdleStream(await _inner.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), this);

    protected override Task<Stream> CreateContentReadStreamAsync() => CreateContentReadStreamAsync(CancellationToken.None);

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        await using var body = await CreateContentReadStreamAsync(cancellationToken).ConfigureAwait(false);
        await body.CopyToAsync(stream, cancellationToken).ConfigureAwait(false);
    }

    protected override bool TryComputeLength(out long length)
    {
        var known = _inner.Headers.ContentLength;
        length = known ?? 0;
        return known is not null;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }

    private MeshCallException Idle(Exception inner) => new(
        "idle_timeout",
        $"The response from '{_host}' delivered no data for {_idle} (Mesh:Policy:Destinations:{_host}:IdleTimeout).",
        inner);

    private sealed class IdleStream(Stream inner, IdleResponseBody body) : Stream
    {
        private readonly CancellationTokenSource _idle = new(Timeout.InfiniteTimeSpan, body._time);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            using var caller = cancellationToken.UnsafeRegister(static state => ((CancellationTokenSource)state!).Cancel(), _idle);
            _idle.CancelAfter(body._idle);
            try
            {
                return await inner.ReadAsync(buffer, _idle.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
            {
                throw body.Idle(ex);
            }
            finally
            {
                _idle.CancelAfter(Timeout.InfiniteTimeSpan);
            }
        }

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
                _idle.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
