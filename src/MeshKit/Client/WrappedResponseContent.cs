using System.Net;
using System.Net.Http.Headers;

namespace MeshKit.Client;

/// <summary>
/// A response body MeshKit wraps after the response headers (to read a gRPC call's trailers, or to apply an idle timeout):
/// the inner content's headers, and a read stream of the subclass's making around the inner one.
/// </summary>
internal abstract class WrappedResponseContent : HttpContent
{
    protected WrappedResponseContent(HttpContent inner)
    {
        Inner = inner;
        ContentHeaders.Copy(inner.Headers, Headers);
    }

    protected HttpContent Inner { get; }

    /// <summary>Wraps the inner content's read stream.</summary>
    protected abstract Stream Wrap(Stream inner);

    protected override async Task<Stream> CreateContentReadStreamAsync(CancellationToken cancellationToken) =>
        Wrap(await Inner.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false));

    protected override Task<Stream> CreateContentReadStreamAsync() => CreateContentReadStreamAsync(CancellationToken.None);

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        var body = await CreateContentReadStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (body.ConfigureAwait(false))
        {
            await body.CopyToAsync(stream, cancellationToken).ConfigureAwait(false);
        }
    }

    protected override bool TryComputeLength(out long length)
    {
        var known = Inner.Headers.ContentLength;
        length = known ?? 0;
        return known is not null;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Inner.Dispose();
        }

        base.Dispose(disposing);
    }
}

/// <summary>A read-only stream over another, for <see cref="WrappedResponseContent"/>: reads go through the subclass's <c>ReadAsync</c>.</summary>
internal abstract class ReadOnlyWrapperStream(Stream inner) : Stream
{
    protected Stream Inner { get; } = inner;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public abstract override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default);

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
            Inner.Dispose();
        }

        base.Dispose(disposing);
    }
}

/// <summary>Copies content headers onto MeshKit's wrapper of a content.</summary>
internal static class ContentHeaders
{
    /// <summary>
    /// Copies <paramref name="from"/> onto <paramref name="to"/>. The common case, a content type alone (every gRPC message),
    /// is shared as the parsed value rather than re-added as text (no enumerator, no second parse).
    /// </summary>
    public static void Copy(HttpContentHeaders from, HttpContentHeaders to)
    {
        var headers = from.NonValidated;
        if (headers.Count == 1 && headers.Contains("Content-Type") && from.ContentType is { } contentType)
        {
            to.ContentType = contentType;
            return;
        }

        foreach (var header in headers)
        {
            to.TryAddWithoutValidation(header.Key, header.Value);
        }
    }
}
