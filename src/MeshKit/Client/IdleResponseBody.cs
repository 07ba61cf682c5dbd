using MeshKit.Transport;

namespace MeshKit.Client;

/// <summary>
/// A response body under the destination's <c>IdleTimeout</c> (off by default): every read must deliver data within the
/// timeout, or the read is cancelled (which ends the HTTP/2 stream) and fails with a <see cref="MeshCallException"/>
/// reason <c>idle_timeout</c> naming the setting. Only responses of destinations with an idle timeout pay for it.
/// </summary>
internal sealed class IdleResponseBody(HttpContent inner, TimeSpan idle, TimeProvider time, string host) : WrappedResponseContent(inner)
{
    protected override Stream Wrap(Stream inner) => new IdleStream(inner, this);

    private MeshCallException Idle(Exception cause) => new MeshCallException(
        MeshCallReasons.IdleTimeout,
        $"The response from '{host}' delivered no data for {idle} (Mesh:Policy:Destinations:{host}:IdleTimeout).",
        cause);

    private sealed class IdleStream(Stream inner, IdleResponseBody body) : ReadOnlyWrapperStream(inner)
    {
        private readonly CancellationTokenSource _idle = new(Timeout.InfiniteTimeSpan, body.Time);

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            using var caller = cancellationToken.UnsafeRegister(static state => ((CancellationTokenSource)state!).Cancel(), _idle);
            _idle.CancelAfter(body.IdleTimeout);
            try
            {
                return await Inner.ReadAsync(buffer, _idle.Token).ConfigureAwait(false);
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

        protected override void Dispose(bool disposing)
        {
            base.Dispose(disposing);
            if (disposing)
            {
                _idle.Dispose();
            }
        }
    }

    private TimeSpan IdleTimeout => idle;

    private TimeProvider Time => time;
}
