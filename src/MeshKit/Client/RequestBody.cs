using System.Buffers;
using System.Net;

namespace MeshKit.Client;

/// <summary>
/// A mesh call's request body, wrapped around the caller's content. It streams the body through on the first attempt while
/// keeping a copy of its first <c>Mesh:Client:RequestBufferLimit</c> bytes (Linkerd's way: no wait for the whole body before
/// the first byte goes out), so that a body that fitted can be sent again by a retry or a mirror copy. A larger body, or one
/// whose sending failed part-way, cannot be sent again: the call is never retried after such a body started. It also tells
/// the call's <see cref="AttemptTimer"/> when the body starts and ends: as in Envoy, the attempt and total timeouts count
/// from the end of the request body, so a long upload or a client stream is not cut by them (the caller's cancellation or
/// gRPC deadline, and HttpClient's own <c>Timeout</c>, still apply).
/// </summary>
internal sealed class RequestBody : HttpContent
{
    private const int Fresh = 0, Sending = 1, Complete = 2, Spent = 3;
    private readonly HttpContent _inner;
    private readonly int _limit;
    private byte[]? _recorded;
    private int _length;
    private int _state;
    private bool _disposed;
    private bool _released;
    private bool _sendingEnded;

    public RequestBody(HttpContent inner, int limit, AttemptTimer timer)
    {
        _inner = inner;
        _limit = limit;
        Timer = timer;
        ContentHeaders.Copy(inner.Headers, Headers);
    }

    /// <summary>Gets the call's timer, paused while the caller's content produces the body.</summary>
    public AttemptTimer Timer { get; }

    /// <summary>Gets whether the body can be sent (again): not started yet, or sent whole and kept.</summary>
    public bool CanResend => Volatile.Read(ref _state) is Fresh or Complete;

    /// <summary>Gets whether any attempt began to send the body.</summary>
    public bool Started => Volatile.Read(ref _state) != Fresh;

    /// <summary>Gets whether an attempt's sending of the body has ended (whole or failed) and no sending is under way.</summary>
    public bool SendingEnded => Volatile.Read(ref _sendingEnded);

    /// <summary>Gets whether the caller's own content failed while producing the body (not the endpoint's doing).</summary>
    public bool ContentFailed { get; private set; }

    /// <summary>Gets a copy of the whole body when it was sent and kept, for a mirror copy; otherwise <see langword="null"/>.</summary>
    public byte[]? CopyRecorded()
    {
        lock (this)
        {
            return Volatile.Read(ref _state) == Complete && _recorded is not null ? _recorded.AsSpan(0, _length).ToArray() : null;
        }
    }

    /// <summary>
    /// The call is over (no retry or mirror copy will ask for the body again): the kept bytes go back to the pool now, not
    /// when (or if) the caller disposes its request; a body still streaming (a client stream) keeps nothing more.
    /// </summary>
    public void ReleaseRecording()
    {
        lock (this)
        {
            _released = true;
            DropRecording();
            if (Volatile.Read(ref _state) == Complete)
            {
                Volatile.Write(ref _state, Spent);
            }
        }
    }

    /// <summary>Gets the caller's content headers, for a copy of the request.</summary>
    public HttpContent Inner => _inner;

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        switch (Interlocked.CompareExchange(ref _state, Sending, Fresh))
        {
            case Fresh:
                break;
            case Complete:
                Volatile.Write(ref _sendingEnded, false);
                await stream.WriteAsync(_recorded.AsMemory(0, _length), cancellationToken).ConfigureAwait(false);
                Volatile.Write(ref _sendingEnded, true);
                return;
            default:
                throw new RequestBodyNotResendableException(_limit);
        }

        var recording = new RecordingStream(stream, this);
        Timer.Pause();
        try
        {
            await _inner.CopyToAsync(recording, cancellationToken).ConfigureAwait(false);
        }
        catch when (!recording.NetworkFailed)
        {
            ContentFailed = true;
            Volatile.Write(ref _state, Spent);
            throw;
        }
        catch
        {
            Volatile.Write(ref _state, Spent);
            throw;
        }
        finally
        {
            Timer.Resume();
            Volatile.Write(ref _sendingEnded, true);
        }

        lock (this)
        {
            Volatile.Write(ref _state, recording.Overflowed || _limit == 0 || _released ? Spent : Complete);
        }
    }

    protected override bool TryComputeLength(out long length)
    {
        var known = _inner.Headers.ContentLength;
        length = known ?? 0;
        return known is not null;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            _disposed = true;
            _inner.Dispose();
            ReleaseRecording();
        }

        base.Dispose(disposing);
    }

    /// <summary>Keeps the bytes written, up to the limit (under the body's lock: the call may release the buffer meanwhile).</summary>
    private bool Record(ReadOnlySpan<byte> bytes)
    {
        lock (this)
        {
            return RecordLocked(bytes);
        }
    }

    private bool RecordLocked(ReadOnlySpan<byte> bytes)
    {
        if (_released || _length + bytes.Length > _limit)
        {
            return false;
        }

        if (_recorded is null || _recorded.Length < _length + bytes.Length)
        {
            var known = _inner.Headers.ContentLength;
            var size = Math.Max(_length + bytes.Length, known is > 0 and var k && k <= _limit ? (int)k : Math.Min(_limit, Math.Max(4096, (_length + bytes.Length) * 2)));
            var grown = ArrayPool<byte>.Shared.Rent(size);
            if (_recorded is { } old)
            {
                old.AsSpan(0, _length).CopyTo(grown);
                ArrayPool<byte>.Shared.Return(old);
            }

            _recorded = grown;
        }

        bytes.CopyTo(_recorded.AsSpan(_length));
        _length += bytes.Length;
        return true;
    }

    private void DropRecording()
    {
        if (_recorded is { } recorded)
        {
            _recorded = null;
            ArrayPool<byte>.Shared.Return(recorded);
        }

        _length = 0;
    }

    /// <summary>The transport's request stream, seen by the caller's content: writes go through, and are kept up to the limit.</summary>
    private sealed class RecordingStream(Stream network, RequestBody body) : Stream
    {
        public bool Overflowed { get; private set; }

        public bool NetworkFailed { get; private set; }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (!Overflowed && !body.Record(buffer.Span))
            {
                Overflowed = true;
                lock (body)
                {
                    body.DropRecording();
                }
            }

            ValueTask writing;
            try
            {
                writing = network.WriteAsync(buffer, cancellationToken);
            }
            catch
            {
                NetworkFailed = true;
                throw;
            }

            // Most writes complete at once (HTTP/2 buffers them): no state machine for those.
            return writing.IsCompletedSuccessfully ? default : AwaitWriteAsync(writing);
        }

        private async ValueTask AwaitWriteAsync(ValueTask writing)
        {
            try
            {
                await writing.ConfigureAwait(false);
            }
            catch
            {
                NetworkFailed = true;
                throw;
            }
        }

        public override void Flush() => network.Flush();

        public override async Task FlushAsync(CancellationToken cancellationToken)
        {
            try
            {
                await network.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                NetworkFailed = true;
                throw;
            }
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}

/// <summary>A retry or mirror copy found the request body already sent and not kept (larger than the buffer limit, or failed part-way).</summary>
internal sealed class RequestBodyNotResendableException(int limit)
    : InvalidOperationException($"The request body cannot be sent again: it was larger than Mesh:Client:RequestBufferLimit ({limit} bytes) or its sending failed part-way.");

/// <summary>
/// The timer of a call with a request body: the call's cancellation source armed for the attempt, paused while the body is
/// being sent (an upload, a client stream), so the attempt and total timeouts count the time before the body starts and
/// from its end to the response headers. Once the call has its response headers the timer is
/// released: the body may go on streaming (a client or bidirectional stream), and nothing re-arms the source.
/// </summary>
internal sealed class AttemptTimer(TimeProvider time)
{
    private CancellationTokenSource? _source;
    private long _firesAt;
    private long _pausedAt;
    private long _pausedTicks;
    private bool _released;

    /// <summary>Gets the time the timer was paused so far, in the clock's ticks: the call's deadline moves by as much.</summary>
    public long PausedTicks
    {
        get
        {
            lock (this)
            {
                return _pausedTicks + (_pausedAt != 0 ? time.GetTimestamp() - _pausedAt : 0);
            }
        }
    }

    /// <summary>Arms <paramref name="source"/> to fire after <paramref name="delay"/> (counted only while not paused).</summary>
    public void Arm(CancellationTokenSource source, TimeSpan delay)
    {
        lock (this)
        {
            _source = source;
            _firesAt = time.GetTimestamp() + (long)(delay.TotalSeconds * time.TimestampFrequency);
            if (_pausedAt == 0)
            {
                source.CancelAfter(delay);
            }
            else
            {
                source.CancelAfter(Timeout.InfiniteTimeSpan);
            }
        }
    }

    /// <summary>The body started: stop counting.</summary>
    public void Pause()
    {
        lock (this)
        {
            if (_released || _pausedAt != 0 || _source is null)
            {
                return;
            }

            _pausedAt = time.GetTimestamp();
            if (_pausedAt == 0)
            {
                _pausedAt = 1;
            }

            _source.CancelAfter(Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>The body ended (sent whole, or failed): count again from where it stopped.</summary>
    public void Resume()
    {
        lock (this)
        {
            if (_pausedAt == 0)
            {
                return;
            }

            var paused = time.GetTimestamp() - _pausedAt;
            _pausedAt = 0;
            _pausedTicks += paused;
            _firesAt += paused;
            if (_released || _source is not { } source)
            {
                return;
            }

            var left = _firesAt - time.GetTimestamp();
            source.CancelAfter(left <= 0 ? TimeSpan.Zero : TimeSpan.FromSeconds((double)left / time.TimestampFrequency));
        }
    }

    /// <summary>The call is over (its response headers arrived, or it failed): disarm for good.</summary>
    public void Release()
    {
        lock (this)
        {
            _released = true;
            _source?.CancelAfter(Timeout.InfiniteTimeSpan);
            _source = null;
        }
    }
}
