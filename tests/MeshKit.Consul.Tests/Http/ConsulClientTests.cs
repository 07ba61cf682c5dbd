using System.Net;
using System.Net.Sockets;
using MeshKit.Testing.Consul;

namespace MeshKit.Consul.Tests.Http;

/// <summary>The client's wire behaviour: the ACL token on every call, and typed errors instead of crashes.</summary>
[Trait("Area", "Discovery")]
public sealed class ConsulClientTests
{
    private const string Token = "0d6a5e2c-4b7f-4c1e-9a3b-5f2e8d7c6b10";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_ACL_token_is_sent_on_every_call_and_never_logged()
    {
        await using var consul = await ConsulTestContext.WithDoubleAsync(new ConsulDoubleOptions { RequiredToken = Token }, token: Token);
        var consulDouble = consul.Double!;
        var client = consul.CreateClient();
        var service = ConsulTestContext.UniqueName("orders");
        var instance = consul.Instance(service, check: new ConsulTtlCheck { Ttl = TimeSpan.FromSeconds(30) });
        var key = consul.Key("token");

        await client.RegisterServiceAsync(instance, Ct);
        await client.PassCheckAsync(instance.CheckId, "ok", Ct);
        await client.WarnCheckAsync(instance.CheckId, cancellationToken: Ct);
        await client.FailCheckAsync(instance.CheckId, cancellationToken: Ct);
        await client.UpdateCheckAsync(instance.CheckId, ConsulCheckStatus.Passing, "ok", Ct);
        await client.GetHealthServiceAsync(service, cancellationToken: Ct);
        await client.GetCatalogServicesAsync(cancellationToken: Ct);
        await client.PutKeyAsync(key, "value", cancellationToken: Ct);
        await client.GetKeyAsync(key, cancellationToken: Ct);
        await client.ListKeysAsync("meshkit-tests/", cancellationToken: Ct);
        await client.DeleteKeyAsync(key, cancellationToken: Ct);
        await using (var recorder = new QueryRecorder<IReadOnlyList<ConsulServiceEntry>>(client.CreateHealthServiceQuery(service)))
        {
            await MeshKit.Testing.Eventually.WaitAsync(() => recorder.Query.RequestCount >= 3, TimeSpan.FromSeconds(10), "three blocking requests");
        }

        await client.DeregisterServiceAsync(instance.Id, Ct);

        var requests = consulDouble.Requests;
        Assert.True(requests.Count >= 15, $"{requests.Count} requests");
        Assert.All(requests, r => Assert.Equal(Token, r.Token));
        Assert.DoesNotContain(Token, consul.Logs.AllText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_refused_token_is_a_403_ConsulException_that_does_not_repeat_the_token()
    {
        const string Wrong = "11111111-2222-3333-4444-555555555555";
        await using var consul = await ConsulTestContext.WithDoubleAsync(new ConsulDoubleOptions { RequiredToken = Token }, token: Wrong);
        var client = consul.CreateClient();

        var error = await Assert.ThrowsAsync<ConsulException>(() => client.GetHealthServiceAsync("orders", cancellationToken: Ct));

        Assert.Equal(HttpStatusCode.Forbidden, error.StatusCode);
        Assert.Equal(ConsulErrorKind.Status, error.Kind);
        Assert.Contains("GET /v1/health/service/orders answered 403", error.Message, StringComparison.Ordinal);
        Assert.Contains("ACL not found", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Wrong, error.ToString(), StringComparison.Ordinal);
    }

    [Trait("Area", "Security")]
    [Fact]
    public async Task A_500_is_a_ConsulException_naming_the_endpoint_status_and_reason()
    {
        await using var consul = await ConsulTestContext.WithDoubleAsync();
        consul.Double!.Fault = ConsulDoubleFault.ServerError;
        var client = consul.CreateClient();

        var error = await Assert.ThrowsAsync<ConsulException>(() => client.GetCatalogServicesAsync(cancellationToken: Ct));

        Assert.Equal(HttpStatusCode.InternalServerError, error.StatusCode);
        Assert.Equal("GET /v1/catalog/services", error.Endpoint);
        Assert.Equal("Consul GET /v1/catalog/services answered 500 Internal Server Error: rpc error making call: No cluster leader", error.Message);
    }

    [Trait("Area", "Security")]
    [Fact]
    public async Task A_malformed_body_is_a_ConsulException_not_a_JsonException()
    {
        await using var consul = await ConsulTestContext.WithDoubleAsync();
        consul.Double!.Fault = ConsulDoubleFault.MalformedBody;
        var client = consul.CreateClient();

        var error = await Assert.ThrowsAsync<ConsulException>(() => client.GetHealthServiceAsync("orders", cancellationToken: Ct));

        Assert.Equal(ConsulErrorKind.MalformedResponse, error.Kind);
        Assert.Equal(HttpStatusCode.OK, error.StatusCode);
        Assert.Contains("GET /v1/health/service/orders", error.Message, StringComparison.Ordinal);
        Assert.IsType<System.Text.Json.JsonException>(error.InnerException, exactMatch: false);
    }

    [Fact]
    public async Task An_unreachable_agent_is_a_ConsulException_naming_the_endpoint_and_address()
    {
        await using var consul = await ConsulTestContext.WithDoubleAsync();
        await consul.Double!.StopAsync();
        var client = consul.CreateClient();

        var error = await Assert.ThrowsAsync<ConsulException>(() => client.PutKeyAsync("k", "v", cancellationToken: Ct));

        Assert.Equal(ConsulErrorKind.Unreachable, error.Kind);
        Assert.Null(error.StatusCode);
        Assert.Equal("PUT /v1/kv/k", error.Endpoint);
        Assert.Contains($"127.0.0.1:{consul.Double.Port}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_agent_that_never_answers_is_a_timeout_ConsulException()
    {
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var port = ((IPEndPoint)silent.LocalEndpoint).Port;
        using var client = new ConsulClient(
            Microsoft.Extensions.Options.Options.Create(new ConsulOptions { Address = new Uri($"http://127.0.0.1:{port}"), RequestTimeout = TimeSpan.FromSeconds(1) }),
            Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);

        var error = await Assert.ThrowsAsync<ConsulException>(() => client.GetCatalogServicesAsync(cancellationToken: Ct));

        Assert.Equal(ConsulErrorKind.Timeout, error.Kind);
        Assert.Equal("Consul GET /v1/catalog/services did not answer within 1 s.", error.Message);
    }

    [Fact]
    public async Task Answers_carry_the_index_and_leader_headers()
    {
        await using var consul = await ConsulTestContext.WithDoubleAsync();
        var client = consul.CreateClient();

        var withLeader = await client.GetHealthServiceAsync("orders", cancellationToken: Ct);
        consul.Double!.KnownLeader = false;
        var withoutLeader = await client.GetHealthServiceAsync("orders", cancellationToken: Ct);

        Assert.True(withLeader.Index > 0);
        Assert.True(withLeader.Meta.KnownLeader);
        Assert.False(withoutLeader.Meta.KnownLeader);
        Assert.Equal(TimeSpan.Zero, withoutLeader.Meta.LastContact);
    }

    [Fact]
    public async Task Cancelling_a_call_throws_OperationCanceledException_not_ConsulException()
    {
        await using var consul = await ConsulTestContext.WithDoubleAsync();
        var client = consul.CreateClient();
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.GetCatalogServicesAsync(cancellationToken: cancelled.Token));
    }
}
