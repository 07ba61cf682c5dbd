using System.Diagnostics;
using MeshKit.Testing;
using MeshKit.Tests.Identity;
using Microsoft.AspNetCore.Http;

namespace MeshKit.Tests.Traffic;

/// <summary>Server-sent events over plain HTTP through a mesh client: the stream outlives the destination's timeouts.</summary>
[Trait("Area", "Traffic")]
public sealed class ServerSentEventsTests(MeshTestBed bed) : IClassFixture<MeshTestBed>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_server_sent_event_stream_runs_past_the_attempt_timeout_and_the_total_timeout()
    {
        await using var orders = await Upstream.StartAsync(bed, "orders", "v1", async (http, me) =>
        {
            http.Response.ContentType = "text/event-stream";
            await http.Response.StartAsync(http.RequestAborted);
            for (var i = 0; i < 8; i++)
            {
                await http.Response.WriteAsync($"data: {i}\n\n", http.RequestAborted);
                await http.Response.Body.FlushAsync(http.RequestAborted);
                await Task.Delay(500, http.RequestAborted);
            }
        });
        await using var caller = await Caller.StartAsync(bed, "orders", [orders], new Dictionary<string, string?>
        {
            ["Mesh:Policy:Destinations:orders:AttemptTimeout"] = "00:00:01",
            ["Mesh:Policy:Destinations:orders:Timeout"] = "00:00:02",
        });

        var watch = Stopwatch.StartNew();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/events");
        using var response = await caller.Client("orders").SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(Ct));
        var events = new List<string>();
        while (await reader.ReadLineAsync(Ct) is { } line)
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                events.Add(line["data: ".Length..]);
            }
        }

        Assert.Equal(["0", "1", "2", "3", "4", "5", "6", "7"], events);
        Assert.True(watch.Elapsed > TimeSpan.FromSeconds(3), $"the stream lasted {watch.Elapsed}");
    }
}
