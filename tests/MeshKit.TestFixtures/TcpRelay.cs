using System.Net;
using System.Net.Sockets;

namespace MeshKit.Testing;

/// <summary>
/// A TCP relay on 127.0.0.1 in front of a real server, that can go silent: <see cref="Freeze"/> stops forwarding bytes in
/// both directions without closing a connection, as a peer that lost power or a network that dropped its packets would
/// look (no FIN, no RST). TLS passes through untouched.
/// </summary>
public sealed class TcpRelay : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly IPEndPoint _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<TcpClient> _connections = [];
    private readonly Task _accepting;
    private volatile bool _frozen;

    private TcpRelay(IPEndPoint target)
    {
        _target = target;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _accepting = AcceptAsync();
    }

    /// <summary>Gets the relay's port on 127.0.0.1.</summary>
    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Gets how many connections the relay has accepted.</summary>
    public int Accepted { get; private set; }

    /// <summary>Starts a relay to <paramref name="target"/>.</summary>
    /// <param name="target">The server's address.</param>
    /// <returns>The relay.</returns>
    public static TcpRelay Start(IPEndPoint target) => new(target);

    /// <summary>From now on nothing passes, in either direction, and new connections are accepted but never answered; nothing is closed.</summary>
    public void Freeze() => _frozen = true;

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        lock (_connections)
        {
            foreach (var connection in _connections)
            {
                connection.Dispose();
            }
        }

        await _accepting.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient inbound;
            try
            {
                inbound = await _listener.AcceptTcpClientAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            Accepted++;
            lock (_connections)
            {
                _connections.Add(inbound);
            }

            if (_frozen)
            {
                continue;
            }

            var outbound = new TcpClient();
            lock (_connections)
            {
                _connections.Add(outbound);
            }

            _ = RelayAsync(inbound, outbound);
        }
    }

    private async Task RelayAsync(TcpClient inbound, TcpClient outbound)
    {
        try
        {
            await outbound.ConnectAsync(_target, _stop.Token).ConfigureAwait(false);
            var a = inbound.GetStream();
            var b = outbound.GetStream();
            await Task.WhenAll(PumpAsync(a, b), PumpAsync(b, a)).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or IOException or ObjectDisposedException)
        {
        }
        finally
        {
            if (!_frozen)
            {
                inbound.Dispose();
                outbound.Dispose();
            }
        }
    }

    private async Task PumpAsync(Stream from, Stream to)
    {
        var buffer = new byte[16 * 1024];
        while (true)
        {
            var read = await from.ReadAsync(buffer, _stop.Token).ConfigureAwait(false);
            if (read == 0)
            {
                if (!_frozen)
                {
                    to.Close();
                }

                return;
            }

            if (_frozen)
            {
                // Swallow what arrives, forward nothing, close nothing: silence.
                continue;
            }

            await to.WriteAsync(buffer.AsMemory(0, read), _stop.Token).ConfigureAwait(false);
        }
    }
}
