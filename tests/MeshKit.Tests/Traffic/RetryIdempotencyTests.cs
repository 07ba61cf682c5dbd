using System.Net;
using MeshKit.Tests.Identity;
using Microsoft.AspNetCore.Http;

namespace MeshKit.Tests.Traffic;

[Trait("Area", "Traffic")]
[Collection(LoadCollection.Name)]
public sealed class RetryIdempotencyTests(MeshTestBed bed) : IClassFixture<MeshTestBed>
{
    [Fact]
    public async Task By_default_a_failed_POST_is_sent_once_while_a_failed_GET_to_the_same_upstream_is_retried()
    {
        var posts = 0;
        var gets = 0;
        await using var broken = await Upstream.StartAsync(bed, "orders", "v1", async (http, _) =>
        {
            // Read the body, so a second copy would be a whole second request the upstream would act on.
            using var reader = new StreamReader(http.Request.Body);
            await reader.ReadToEndAsync(http.RequestAborted);
            if (HttpMethods.IsPost(http.Request.Method))
            {
                Interlocked.Increment(ref posts);
            }
            else
            {
                Interlocked.Increment(ref gets);
            }

            http.Response.StatusCode = 503;
        });

        // The default traffic policy: nothing about retries is set.
        await using var caller = await Caller.StartAsync(bed, "orders", [broken]);
        var client = caller.Client("orders");

        using var post = await client.PostAsync("/api/orders", new StringContent("{\"item\":\"book\"}"), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, post.StatusCode);
        Assert.Equal(1, posts);
        Assert.Equal(0, caller.Metrics.Sum("mesh.client.retries"));

        // The same failure on a GET is retried (twice, by default): the test would see retries of the POST.
        using var get = await client.GetAsync("/api/orders", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, get.StatusCode);
        Assert.Equal(3, gets);
        Assert.Equal(1, posts);
        Assert.Equal(2, caller.Metrics.Sum("mesh.client.retries"));
    }
}
