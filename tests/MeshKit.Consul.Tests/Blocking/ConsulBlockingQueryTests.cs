using System.Net;
using MeshKit.Testing;
using MeshKit.Testing.Consul;

namespace MeshKit.Consul.Tests.Blocking;

/// <summary>
/// The blocking loop against the double's adversarial switches: index resets, an index of 0, early returns with an
/// unchanged index, 500s and malformed bodies. Real Consul cannot be made to do these on demand.
/// </summary>
[Trait("Area", "Discovery")]
public sealed class ConsulBlockingQueryTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Trait("Area", "Security")]
    [Fact]
    public async Task An_index_that_goes_backwards_resets_the_loop_and_later_changes_still_arrive()
    {
        await using var consul = await ConsulTestContext.WithDoubleAsync();
        var consulDouble = consul.Double!;

        // A 30 s wait: a client that kept waiting on its old, higher index would miss the 10 s deadline.
        var client = consul.CreateClient(o => o.Wait = TimeSpan.FromSeconds(30));
        for (var i = 0; i < 20; i++)
        {
            await client.PutKeyAsync("filler", i.ToString(System.Globalization.CultureInfo.InvariantCulture), cancellationToken: Ct);
        }

        var service = ConsulTestContext.UniqueName("orders");
        await client.RegisterServiceAsync(consul.Instance(service), Ct);
        var path = "/v1/health/service/" + service;
        await using var recorder = new QueryRecorder<IReadOnlyList<ConsulServiceEntry>>(client.CreateHealthServiceQuery(service));
        await recorder.WaitForAsync(entries => entries.Count == 1, "the first instance");
        await Eventually.WaitAsync(() => consulDouble.InFlight(path) == 1, Deadline, "the blocking request to be held");
        var held = recorder.Query.Index;
        Assert.True(held > 20, $"index {held}");

        // A snapshot restore: every index drops, and waiting queries are released with the lower one.
        consulDouble.RewindIndex((long)held - 3);
        await Eventually.WaitAsync(() => consul.Logs.Entries.Any(e => e.EventId.Id == 4112), Deadline, "the client to notice the index went backwards");
        await Eventually.WaitAsync(() => recorder.Query.Index < held, Deadline, "the client to wait on the new, lower index");

        var second = consul.Instance(service, address: "10.0.0.2");
        await client.RegisterServiceAsync(second, Ct);

        await recorder.WaitForAsync(entries => entries.Count == 2, "the instance registered after the reset");
        Assert.Contains(consulDouble.Requests, r => r.Path == path && r.Query.Contains("index=1&", StringComparison.Ordinal));
        Assert.Null(recorder.Failure);
    }

    [Trait("Area", "Security")]
    [Fact]
    public async Task An_index_of_zero_is_never_sent_back_and_does_not_make_the_loop_spin()
    {
        await using var consul = await ConsulTestContext.WithDoubleAsync();
        var consulDouble = consul.Double!;
        var client = consul.CreateClient(o => o.Wait = TimeSpan.FromSeconds(1));
        var service = ConsulTestContext.UniqueName("orders");
        await client.RegisterServiceAsync(consul.Instance(service), Ct);
        var path = "/v1/health/service/" + service;
        await using var recorder = new QueryRecorder<IReadOnlyList<ConsulServiceEntry>>(client.CreateHealthServiceQuery(service));
        await recorder.WaitForAsync(entries => entries.Count == 1, "the instance");

        // Every index now reads 0, the Consul bug the documentation warns about.
        consulDouble.RewindIndex(1_000_000);
        var since = DateTimeOffset.UtcNow;
        await Task.Delay(TimeSpan.FromSeconds(3), Ct);

        var after = consulDouble.Requests.Where(r => r.Path == path && r.ReceivedAt >= since).ToList();
        Assert.InRange(after.Count, 2, 5);
        Assert.DoesNotContain(after, r => r.Query.Contains("index=0", StringComparison.Ordinal));
        Assert.Equal(1UL, recorder.Query.Index);
        Assert.Null(recorder.Failure);
    }

    [Fact]
    public async Task An_early_return_with_an_unchanged_index_does_not_spin()
    {
        await using var consul = await ConsulTestContext.WithDoubleAsync();
        var consulDouble = consul.Double!;
        var client = consul.CreateClient(o =>
        {
            o.Wait = TimeSpan.FromSeconds(1);
            o.MinimumQueryInterval = TimeSpan.FromMilliseconds(250);
        });
        var service = ConsulTestContext.UniqueName("orders");
        await client.RegisterServiceAsync(consul.Instance(service), Ct);
        var path = "/v1/health/service/" + service;
        await using var recorder = new QueryRecorder<IReadOnlyList<ConsulServiceEntry>>(client.CreateHealthServiceQuery(service));
        await recorder.WaitForAsync(entries => entries.Count == 1, "the instance");

        consulDouble.EarlyReturns = true;
        var since = DateTimeOffset.UtcNow;
        await Task.Delay(TimeSpan.FromSeconds(2), Ct);
        var count = consulDouble.CountRequests(path, since);

        // Each answer comes back at once; only the 250 ms minimum interval paces the loop (a spin would be thousands).
        Assert.InRange(count, 3, 10);
        Assert.Single(recorder.Results);

        // A real change still comes through.
        await client.RegisterServiceAsync(consul.Instance(service, address: "10.0.0.2"), Ct);
        await recorder.WaitForAsync(entries => entries.Count == 2, "the second instance");
    }

    [Fact]
    public async Task Server_errors_are_logged_and_retried_with_backoff_and_the_loop_recovers()
    {
        await using var consul = await ConsulTestContext.WithDoubleAsync();
        var consulDouble = consul.Double!;
        var client = consul.CreateClient();
        var service = ConsulTestContext.UniqueName("orders");
        await client.RegisterServiceAsync(consul.Instance(service), Ct);
        var path = "/v1/health/service/" + service;
        await using var recorder = new QueryRecorder<IReadOnlyList<ConsulServiceEntry>>(client.CreateHealthServiceQuery(service));
        await recorder.WaitForAsync(entries => entries.Count == 1, "the instance");

        consulDouble.FaultPathPrefix = "/v1/health/";
        consulDouble.Fault = ConsulDoubleFault.ServerError;
        await Eventually.WaitAsync(() => recorder.Query.ConsecutiveFailures >= 1, Deadline, "the first failure");
        var since = DateTimeOffset.UtcNow;
        await Task.Delay(TimeSpan.FromSeconds(3), Ct);

        // Back-off from 100 ms doubling to 1 s allows at most 9 attempts in 3 s; the 100 ms rate limit alone would allow 30.
        Assert.InRange(consulDouble.CountRequests(path, since), 2, 9);
        Assert.True(recorder.Query.ConsecutiveFailures >= 3);
        Assert.Equal(HttpStatusCode.InternalServerError, recorder.Query.LastError?.StatusCode);
        var warning = consul.Logs.Entries.First(e => e.EventId.Id == 4110);
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Warning, warning.Level);
        Assert.Contains("status 500", warning.Message, StringComparison.Ordinal);
        Assert.Contains(path, warning.Message, StringComparison.Ordinal);
        Assert.Single(recorder.Query.LastResult!.Value);

        consulDouble.Fault = ConsulDoubleFault.None;
        await client.RegisterServiceAsync(consul.Instance(service, address: "10.0.0.2"), Ct);

        await recorder.WaitForAsync(entries => entries.Count == 2, "the loop to recover and see the second instance");
        Assert.Equal(0, recorder.Query.ConsecutiveFailures);
        Assert.Contains(consul.Logs.Entries, e => e.EventId.Id == 4111);
        Assert.Null(recorder.Failure);
    }

    [Trait("Area", "Security")]
    [Fact]
    public async Task Malformed_JSON_is_logged_and_retried_and_the_loop_recovers()
    {
        await using var consul = await ConsulTestContext.WithDoubleAsync();
        var consulDouble = consul.Double!;
        var client = consul.CreateClient();
        var service = ConsulTestContext.UniqueName("orders");
        var first = consul.Instance(service);
        await client.RegisterServiceAsync(first, Ct);
        await using var recorder = new QueryRecorder<IReadOnlyList<ConsulServiceEntry>>(client.CreateHealthServiceQuery(service));
        await recorder.WaitForAsync(entries => entries.Count == 1, "the instance");

        consulDouble.Fault = ConsulDoubleFault.MalformedBody;
        await Eventually.WaitAsync(() => recorder.Query.ConsecutiveFailures >= 2, Deadline, "malformed answers to be counted as failures");

        Assert.Equal(ConsulErrorKind.MalformedResponse, recorder.Query.LastError?.Kind);
        Assert.Contains(consul.Logs.Entries, e => e.EventId.Id == 4110 && e.Message.Contains("MalformedResponse", StringComparison.Ordinal));
        Assert.Equal(first.Id, Assert.Single(recorder.Query.LastResult!.Value).Service.Id);

        consulDouble.Fault = ConsulDoubleFault.None;
        await client.RegisterServiceAsync(consul.Instance(service, address: "10.0.0.2"), Ct);

        await recorder.WaitForAsync(entries => entries.Count == 2, "the loop to recover and see the second instance");
        Assert.Null(recorder.Failure);
    }

    [Fact]
    public async Task An_empty_service_address_in_answers_means_the_nodes_address()
    {
        await using var consul = await ConsulTestContext.WithDoubleAsync(new ConsulDoubleOptions { NodeAddress = "192.0.2.10" });
        var client = consul.CreateClient();
        var service = ConsulTestContext.UniqueName("orders");
        await client.RegisterServiceAsync(consul.Instance(service, address: "10.9.9.9"), Ct);
        consul.Double!.EmptyServiceAddresses = true;

        var entry = Assert.Single((await client.GetHealthServiceAsync(service, cancellationToken: Ct)).Value);

        Assert.Equal(string.Empty, entry.Service.Address);
        Assert.Equal("192.0.2.10", entry.EffectiveAddress);
    }

    [Fact]
    public async Task A_critical_instance_is_reaped_after_DeregisterCriticalServiceAfter()
    {
        await using var consul = await ConsulTestContext.WithDoubleAsync(new ConsulDoubleOptions
        {
            MinimumDeregisterCriticalServiceAfter = TimeSpan.FromSeconds(1),
            ReapInterval = TimeSpan.FromMilliseconds(200),
        });
        var consulDouble = consul.Double!;
        var client = consul.CreateClient();
        var service = ConsulTestContext.UniqueName("orders");
        var crashed = consul.Instance(service, check: new ConsulTtlCheck { Ttl = TimeSpan.FromSeconds(1), DeregisterCriticalServiceAfter = TimeSpan.FromSeconds(1) });
        var longLived = consul.Instance(service, check: new ConsulTtlCheck { Ttl = TimeSpan.FromSeconds(1) });
        await client.RegisterServiceAsync(crashed, Ct);
        await client.RegisterServiceAsync(longLived, Ct);

        await Eventually.WaitAsync(() => !consulDouble.HasService(crashed.Id), Deadline, "the crashed instance to be reaped");

        // The default (and Consul's minimum) of 1 minute keeps the other one, critical but listed.
        Assert.True(consulDouble.HasService(longLived.Id));
        Assert.Equal("critical", consulDouble.CheckStatus(longLived.CheckId));
        var all = await client.GetHealthServiceAsync(service, new ConsulHealthQuery { PassingOnly = false }, Ct);
        Assert.Equal(longLived.Id, Assert.Single(all.Value).Service.Id);
    }
}
