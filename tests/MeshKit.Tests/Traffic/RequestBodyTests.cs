using System.Collections.Concurrent;
using System.Net;
using System.Text;
using MeshKit.Testing;
using MeshKit.Tests.Identity;
using Microsoft.AspNetCore.Http;

namespace MeshKit.Tests.Traffic;

/// <summary>
/// Request bodies on the mesh call path: a small body is kept while it is sent, so a retry or a mirror copy sends it again;
/// a larger one streams through unbuffered and is never sent twice.
/// </summary>
[Trait("Area", "Traffic")]
public sealed class RequestBodyTests(MeshTestBed bed) : IClassFixture<MeshTestBed>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Dictionary<string, string?> RetryAllMethods => new()
    {
        ["Mesh:Policy:Destinations:orders:Retry:Methods"] = "All",
        ["Mesh:Policy:Destinations:orders:Retry:Budget:MinimumThroughput"] = "1000",
    };

    [Fact]
    public async Task A_small_streamed_POST_body_is_sent_again_whole_by_a_retry()
    {
        var bodies = new ConcurrentQueue<string>();
        await using var orders = await Upstream.StartAsync(bed, "orders", "v1", async (http, me) =>
        {
            bodies.Enqueue(await new StreamReader(http.Request.Body).ReadToEndAsync(http.RequestAborted));
            http.Response.StatusCode = me.Served == 1 ? 503 : 200;
        });
        await using var caller = await Caller.StartAsync(bed, "orders", [orders], RetryAllMethods);

        // A stream that cannot seek: before MeshKit kept bodies, the retry found it consumed.
        using var content = new StreamContent(new OneWayStream(Encoding.UTF8.GetBytes("{\"sku\":\"apple\",\"quantity\":2}")));
        using var response = await caller.Client("orders").PostAsync("/orders", content, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(["{\"sku\":\"apple\",\"quantity\":2}", "{\"sku\":\"apple\",\"quantity\":2}"], bodies);
    }

    [Fact]
    public async Task A_body_larger_than_the_buffer_limit_is_not_retried_once_it_started()
    {
        var received = new ConcurrentQueue<long>();
        await using var orders = await Upstream.StartAsync(bed, "orders", "v1", async (http, me) =>
        {
            received.Enqueue(await Drain(http));
            http.Response.StatusCode = 503;
        });
        await using var caller = await Caller.StartAsync(bed, "orders", [orders], RetryAllMethods);

        using var content = new StreamContent(new GeneratedStream(200 * 1024));
        using var response = await caller.Client("orders").PostAsync("/orders", content, Ct);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal([200 * 1024L], received);
    }

    [Fact]
    public async Task A_POST_body_is_mirrored_whole_to_the_mirror_subset()
    {
        var mirrored = new ConcurrentQueue<string>();
        await using var v1 = await Upstream.StartAsync(bed, "orders", "v1", async (http, me) =>
        {
            await Drain(http);
            await http.Response.WriteAsync("v1");
        });
        await using var shadow = await Upstream.StartAsync(bed, "orders", "shadow", async (http, me) =>
        {
            mirrored.Enqueue(await new StreamReader(http.Request.Body).ReadToEndAsync(http.RequestAborted));
        });
        await using var caller = await Caller.StartAsync(bed, "orders", [v1, shadow], new Dictionary<string, string?>
        {
            ["Mesh:Policy:Destinations:orders:Routes:0:Split:v1"] = "100",
            ["Mesh:Policy:Destinations:orders:Routes:0:Mirror:Subset"] = "shadow",
        });

        using var content = new StringContent("{\"sku\":\"pear\"}", Encoding.UTF8, "application/json");
        using var response = await caller.Client("orders").PostAsync("/orders", content, Ct);

        Assert.Equal("v1", await response.Content.ReadAsStringAsync(Ct));
        await Eventually.WaitAsync(() => !mirrored.IsEmpty, TimeSpan.FromSeconds(10), "the mirror copy to arrive");
        Assert.Equal(["{\"sku\":\"pear\"}"], mirrored);
    }

    [Fact]
    public async Task A_100_MB_streamed_upload_passes_unbuffered_and_longer_than_the_attempt_timeout()
    {
        var received = new ConcurrentQueue<long>();
        await using var orders = await Upstream.StartAsync(bed, "orders", "v1", async (http, me) =>
        {
            received.Enqueue(await Drain(http));
        });
        await using var caller = await Caller.StartAsync(bed, "orders", [orders], new Dictionary<string, string?>
        {
            ["Mesh:Policy:Destinations:orders:AttemptTimeout"] = "00:00:00.500",
            ["Mesh:Policy:Destinations:orders:Timeout"] = "00:00:01",
        });

        // 100 MB produced on the fly, 1 MB every 10 ms at most: over a second on the wire, past both timeouts, which count
        // from the end of the body.
        const long Size = 100L * 1024 * 1024;
        using var content = new StreamContent(new GeneratedStream(Size, pauseEveryMegabyte: TimeSpan.FromMilliseconds(10)));
        using var response = await caller.Client("orders").PostAsync("/upload", content, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal([Size], received);
    }

    private static async Task<long> Drain(HttpContext http)
    {
        http.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>()!.MaxRequestBodySize = null;
        var buffer = new byte[81920];
        long total = 0;
        int read;
        while ((read = await http.Request.Body.ReadAsync(buffer, http.RequestAborted)) > 0)
        {
            total += read;
        }

        return total;
    }

    /// <summary>A read-once stream over bytes (no seeking), like a request body read from the network.</summary>
    private sealed class OneWayStream(byte[] bytes) : Stream
    {
        private int _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = Math.Min(count, bytes.Length - _position);
            Array.Copy(bytes, _position, buffer, offset, n);
            _position += n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    /// <summary>A read-once stream of <c>size</c> generated bytes, optionally pausing after every megabyte.</summary>
    private sealed class GeneratedStream(long size, TimeSpan pauseEveryMegabyte = default) : Stream
    {
        private long _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = (int)Math.Min(buffer.Length, size - _position);
            if (n <= 0)
            {
                return 0;
            }

            var megabyte = _position / (1024 * 1024);
            buffer.Span[..n].Fill((byte)'x');
            _position += n;
            if (pauseEveryMegabyte > TimeSpan.Zero && _position / (1024 * 1024) != megabyte)
            {
                await Task.Delay(pauseEveryMegabyte, cancellationToken);
            }

            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
