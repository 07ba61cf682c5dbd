using System.Net;
using MeshKit.Testing;
using MeshKit.Testing.Consul;

namespace MeshKit.Consul.Tests.Contract;

/// <summary>
/// What MeshKit relies on from Consul, asserted through MeshKit's client. The same tests run against the double
/// (<see cref="ConsulContractTestsAgainstTheDouble"/>) and, when <c>CONSUL_HTTP_ADDR</c> is set, against a real agent
/// (<see cref="ConsulContractTestsAgainstARealAgent"/>); so the double is held to real Consul's behaviour.
/// </summary>
[Trait("Area", "Discovery")]
public abstract class ConsulContractTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Creates the test's Consul: the double, or the real agent (skipping the test when none is configured).</summary>
    protected abstract Task<ConsulTestContext> ArrangeAsync(ConsulDoubleOptions? options = null);

    [Fact]
    public async Task Registration_round_trips_tags_meta_address_and_port_into_health_results()
    {
        await using var consul = await ArrangeAsync();
        var client = consul.CreateClient();
        var service = ConsulTestContext.UniqueName("orders");
        var meta = new Dictionary<string, string>
        {
            ["version"] = "v2",
            ["spiffe-id"] = "spiffe://test.mesh/ns/default/svc/orders",
            ["meshkit-version"] = "0.1.0",
            ["zone"] = "zone-a",
        };
        var instance = consul.Instance(service, address: "10.1.2.3", port: 9443, tags: ["mesh", "v2"], meta: meta);

        await client.RegisterServiceAsync(instance, Ct);

        var entry = await SingleInstanceAsync(client, service);
        Assert.Equal(instance.Id, entry.Service.Id);
        Assert.Equal(service, entry.Service.Name);
        Assert.Equal("10.1.2.3", entry.Service.Address);
        Assert.Equal("10.1.2.3", entry.EffectiveAddress);
        Assert.Equal(9443, entry.Service.Port);
        Assert.Equal(["mesh", "v2"], entry.Service.Tags.Order());
        foreach (var (key, value) in meta)
        {
            Assert.Equal(value, entry.Service.Meta[key]);
        }

        Assert.NotEmpty(entry.Node.Name);
        Assert.NotEmpty(entry.Node.Datacenter);
    }

    [Fact]
    public async Task An_instance_registered_without_an_address_is_reached_on_its_nodes_address()
    {
        await using var consul = await ArrangeAsync();
        var client = consul.CreateClient();
        var service = ConsulTestContext.UniqueName("inventory");
        await client.RegisterServiceAsync(consul.Instance(service, address: null), Ct);

        var entry = await SingleInstanceAsync(client, service);

        Assert.Equal(string.Empty, entry.Service.Address);
        Assert.NotEmpty(entry.Node.Address);
        Assert.Equal(entry.Node.Address, entry.EffectiveAddress);
    }

    [Fact]
    public async Task A_new_instance_arrives_on_the_blocking_query_that_was_already_waiting()
    {
        await using var consul = await ArrangeAsync();

        // A 30 s wait: if the instance came with the next poll rather than on the waiting query, the 10 s deadline fails.
        var client = consul.CreateClient(o => o.Wait = TimeSpan.FromSeconds(30));
        var service = ConsulTestContext.UniqueName("orders");
        await using var recorder = new QueryRecorder<IReadOnlyList<ConsulServiceEntry>>(client.CreateHealthServiceQuery(service));
        await recorder.WaitForAsync(entries => entries.Count == 0, "the first (empty) answer");
        await WaitUntilBlockingAsync(consul, recorder.Query, "/v1/health/service/" + service);
        var requestsBefore = recorder.Query.RequestCount;

        var instance = consul.Instance(service);
        await client.RegisterServiceAsync(instance, Ct);

        await recorder.WaitForAsync(entries => entries.Any(e => e.Service.Id == instance.Id), "the new instance on the waiting query");

        // At most the next blocking request has started since; nothing polled in between.
        Assert.InRange(recorder.Query.RequestCount, requestsBefore, requestsBefore + 1);
        Assert.Null(recorder.Failure);
    }

    [Fact]
    public async Task While_idle_a_watched_service_costs_at_most_one_request_per_wait_period()
    {
        await using var consul = await ArrangeAsync();
        var client = consul.CreateClient(o =>
        {
            o.Wait = TimeSpan.FromSeconds(1);
            o.RequestTimeout = TimeSpan.FromSeconds(1);
        });
        var service = ConsulTestContext.UniqueName("orders");
        await client.RegisterServiceAsync(consul.Instance(service), Ct);
        await using var recorder = new QueryRecorder<IReadOnlyList<ConsulServiceEntry>>(client.CreateHealthServiceQuery(service));
        await recorder.WaitForAsync(entries => entries.Count == 1, "the instance");

        // Watch an idle window of 3.5 wait periods: requests start at most once per period, plus the one in flight.
        var path = "/v1/health/service/" + service;
        var since = DateTimeOffset.UtcNow;
        var before = recorder.Query.RequestCount;
        await Task.Delay(TimeSpan.FromSeconds(3.5), Ct);
        var sent = recorder.Query.RequestCount - before;

        Assert.InRange(sent, 2, 4);
        if (consul.Double is { } consulDouble)
        {
            Assert.InRange(consulDouble.CountRequests(path, since), 2, 4);
        }

        Assert.Single(recorder.Results);

        // Consul holds a request up to wait + wait/16; the client's timeout allows for that, so idling is never an error.
        Assert.Equal(0, recorder.Query.ConsecutiveFailures);
        Assert.DoesNotContain(consul.Logs.Entries, e => e.EventId.Id == 4110);
    }

    [Fact]
    public async Task An_instance_whose_TTL_is_not_renewed_drops_out_of_passing()
    {
        await using var consul = await ArrangeAsync();
        var client = consul.CreateClient();
        var service = ConsulTestContext.UniqueName("orders");
        var instance = consul.Instance(service, check: new ConsulTtlCheck { Ttl = TimeSpan.FromSeconds(1), InitialStatus = ConsulCheckStatus.Passing });
        await client.RegisterServiceAsync(instance, Ct);
        await using var recorder = new QueryRecorder<IReadOnlyList<ConsulServiceEntry>>(client.CreateHealthServiceQuery(service));
        await recorder.WaitForAsync(entries => entries.Count == 1, "the instance while its TTL is fresh");

        // Nobody renews the TTL.
        await recorder.WaitForAsync(entries => entries.Count == 0, "the instance to drop out of ?passing");

        var all = await client.GetHealthServiceAsync(service, new ConsulHealthQuery { PassingOnly = false }, Ct);
        var check = Assert.Single(all.Value).Checks.Single(c => c.ServiceId == instance.Id);
        Assert.Equal("critical", check.Status);
    }

    [Fact]
    public async Task A_deregistered_instance_disappears_from_the_blocking_query()
    {
        await using var consul = await ArrangeAsync();
        var client = consul.CreateClient();
        var service = ConsulTestContext.UniqueName("orders");
        var first = consul.Instance(service);
        var second = consul.Instance(service, address: "10.0.0.2");
        await client.RegisterServiceAsync(first, Ct);
        await client.RegisterServiceAsync(second, Ct);
        await using var recorder = new QueryRecorder<IReadOnlyList<ConsulServiceEntry>>(client.CreateHealthServiceQuery(service));
        await recorder.WaitForAsync(entries => entries.Count == 2, "both instances");

        await client.DeregisterServiceAsync(first.Id, Ct);

        await recorder.WaitForAsync(entries => entries.Count == 1 && entries[0].Service.Id == second.Id, "only the second instance");
    }

    [Fact]
    public async Task A_TTL_check_set_to_warning_or_critical_leaves_passing_and_passing_again_returns()
    {
        await using var consul = await ArrangeAsync();
        var client = consul.CreateClient();
        var service = ConsulTestContext.UniqueName("orders");
        var instance = consul.Instance(service, check: new ConsulTtlCheck { Ttl = TimeSpan.FromSeconds(30) });
        await client.RegisterServiceAsync(instance, Ct);
        await using var recorder = new QueryRecorder<IReadOnlyList<ConsulServiceEntry>>(client.CreateHealthServiceQuery(service));
        await recorder.WaitForAsync(entries => entries.Count == 0, "no passing instance (TTL checks start critical)");

        await client.PassCheckAsync(instance.CheckId, "ready", Ct);
        await recorder.WaitForAsync(entries => entries.Count == 1, "the instance after pass");

        await client.WarnCheckAsync(instance.CheckId, "degraded", Ct);
        await recorder.WaitForAsync(entries => entries.Count == 0, "a warning instance to leave ?passing");

        await client.UpdateCheckAsync(instance.CheckId, ConsulCheckStatus.Passing, "recovered", Ct);
        await recorder.WaitForAsync(entries => entries.Count == 1 && entries[0].Checks.Any(c => c.Output == "recovered"), "the instance after update");

        await client.FailCheckAsync(instance.CheckId, "broken", Ct);
        await recorder.WaitForAsync(entries => entries.Count == 0, "a critical instance to leave ?passing");
    }

    [Fact]
    public async Task The_registrar_keeps_its_TTL_check_passing_and_deregisters_on_stop()
    {
        await using var consul = await ArrangeAsync();
        var client = consul.CreateClient();
        var service = ConsulTestContext.UniqueName("orders");
        var instance = consul.Instance(service, check: new ConsulTtlCheck { Ttl = TimeSpan.FromSeconds(1) });
        await using var registrar = new ConsulServiceRegistrar(client, instance, consul.Logger<ConsulServiceRegistrar>());
        Assert.Equal(TimeSpan.FromSeconds(1) / 3, registrar.RenewInterval);

        await registrar.StartAsync(Ct);
        Assert.True(registrar.IsRegistered);
        await SingleInstanceAsync(client, service);

        // Over three TTLs the check never lapses: the registrar renews it every TTL/3.
        var until = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(3);
        while (DateTimeOffset.UtcNow < until)
        {
            var passing = await client.GetHealthServiceAsync(service, cancellationToken: Ct);
            Assert.Single(passing.Value);
            await Task.Delay(200, Ct);
        }

        await registrar.StopAsync(Ct);

        Assert.False(registrar.IsRegistered);
        await Eventually.WaitAsync(
            async () => (await client.GetHealthServiceAsync(service, new ConsulHealthQuery { PassingOnly = false }, Ct)).Value.Count == 0,
            Deadline,
            "the instance to be deregistered");
    }

    [Fact]
    public async Task The_registrar_can_mark_its_instance_critical_and_passing_again()
    {
        await using var consul = await ArrangeAsync();
        var client = consul.CreateClient();
        var service = ConsulTestContext.UniqueName("orders");
        var instance = consul.Instance(service, check: new ConsulTtlCheck { Ttl = TimeSpan.FromSeconds(2) });
        await using var registrar = new ConsulServiceRegistrar(client, instance, consul.Logger<ConsulServiceRegistrar>());
        await registrar.StartAsync(Ct);
        await using var recorder = new QueryRecorder<IReadOnlyList<ConsulServiceEntry>>(client.CreateHealthServiceQuery(service));
        await recorder.WaitForAsync(entries => entries.Count == 1, "the registered instance");

        await registrar.SetStatusAsync(ConsulCheckStatus.Critical, "draining", Ct);
        await recorder.WaitForAsync(entries => entries.Count == 0, "the critical instance to leave ?passing");

        await registrar.SetStatusAsync(ConsulCheckStatus.Passing, cancellationToken: Ct);
        await recorder.WaitForAsync(entries => entries.Count == 1, "the instance to return");
        await registrar.StopAsync(Ct);
    }

    [Fact]
    public async Task The_registrar_registers_again_when_the_agent_forgets_the_instance()
    {
        await using var consul = await ArrangeAsync();
        var client = consul.CreateClient();
        var service = ConsulTestContext.UniqueName("orders");
        var instance = consul.Instance(service, check: new ConsulTtlCheck { Ttl = TimeSpan.FromSeconds(1) });
        await using var registrar = new ConsulServiceRegistrar(client, instance, consul.Logger<ConsulServiceRegistrar>());
        await registrar.StartAsync(Ct);
        await SingleInstanceAsync(client, service);

        // As after an agent restart without its data, or reaping during an outage.
        await client.DeregisterServiceAsync(instance.Id, Ct);

        await Eventually.WaitAsync(() => consul.Logs.Entries.Any(e => e.EventId.Id == 4133), Deadline, "the registrar to notice");
        await SingleInstanceAsync(client, service);
        await registrar.StopAsync(Ct);
    }

    [Fact]
    public async Task A_filter_selects_instances_by_meta_and_by_tag()
    {
        await using var consul = await ArrangeAsync();
        var client = consul.CreateClient();
        var service = ConsulTestContext.UniqueName("orders");
        var v1 = consul.Instance(service, tags: ["stable"], meta: new Dictionary<string, string> { ["version"] = "v1", ["spiffe-id"] = "spiffe://test.mesh/ns/default/svc/orders" });
        var v2 = consul.Instance(service, tags: ["canary"], meta: new Dictionary<string, string> { ["version"] = "v2", ["spiffe-id"] = "spiffe://test.mesh/ns/shop/svc/orders" });
        await client.RegisterServiceAsync(v1, Ct);
        await client.RegisterServiceAsync(v2, Ct);
        await Eventually.WaitAsync(async () => (await client.GetHealthServiceAsync(service, cancellationToken: Ct)).Value.Count == 2, Deadline, "both instances");

        var byMeta = await client.GetHealthServiceAsync(service, new ConsulHealthQuery { Filter = "Service.Meta.version == \"v2\"" }, Ct);
        var byTag = await client.GetHealthServiceAsync(service, new ConsulHealthQuery { Filter = "Service.Tags contains \"stable\"" }, Ct);
        var byIn = await client.GetHealthServiceAsync(service, new ConsulHealthQuery { Filter = "\"canary\" in Service.Tags" }, Ct);
        var byTagParameter = await client.GetHealthServiceAsync(service, new ConsulHealthQuery { Tag = "canary" }, Ct);
        var byMapKey = await client.GetHealthServiceAsync(service, new ConsulHealthQuery { Filter = "Service.Meta[\"spiffe-id\"] == \"spiffe://test.mesh/ns/default/svc/orders\"" }, Ct);
        var combined = await client.GetHealthServiceAsync(service, new ConsulHealthQuery { Filter = "Service.Meta.version == \"v1\" or (\"canary\" in Service.Tags and not Service.Meta.version == \"v1\")" }, Ct);

        Assert.Equal(v2.Id, Assert.Single(byMeta.Value).Service.Id);
        Assert.Equal(v1.Id, Assert.Single(byTag.Value).Service.Id);
        Assert.Equal(v2.Id, Assert.Single(byIn.Value).Service.Id);
        Assert.Equal(v2.Id, Assert.Single(byTagParameter.Value).Service.Id);
        Assert.Equal(v1.Id, Assert.Single(byMapKey.Value).Service.Id);
        Assert.Equal(2, combined.Value.Count);
    }

    [Fact]
    public async Task An_invalid_filter_is_a_400_ConsulException_naming_the_endpoint()
    {
        await using var consul = await ArrangeAsync();
        var client = consul.CreateClient();

        var error = await Assert.ThrowsAsync<ConsulException>(() =>
            client.GetHealthServiceAsync("orders", new ConsulHealthQuery { Filter = "Service.Meta.version ==" }, Ct));

        Assert.Equal(HttpStatusCode.BadRequest, error.StatusCode);
        Assert.Equal(ConsulErrorKind.Status, error.Kind);
        Assert.Equal("GET /v1/health/service/orders", error.Endpoint);
        Assert.Contains("GET /v1/health/service/orders", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_catalog_lists_registered_services_with_their_tags()
    {
        await using var consul = await ArrangeAsync();
        var client = consul.CreateClient();
        var service = ConsulTestContext.UniqueName("catalogued");
        await using var recorder = new QueryRecorder<IReadOnlyDictionary<string, IReadOnlyList<string>>>(client.CreateCatalogServicesQuery());
        await Eventually.WaitAsync(() => recorder.Latest is not null, Deadline, "the first catalog answer");
        Assert.False(recorder.Latest!.Value.ContainsKey(service));

        await client.RegisterServiceAsync(consul.Instance(service, tags: ["a"]), Ct);
        await client.RegisterServiceAsync(consul.Instance(service, tags: ["b"]), Ct);

        await recorder.WaitForAsync(services => services.TryGetValue(service, out var tags) && tags.Order().SequenceEqual(["a", "b"]), "the service with tags a and b in the catalog");
        var read = await client.GetCatalogServicesAsync(cancellationToken: Ct);
        Assert.Equal(["a", "b"], read.Value[service].Order());
        Assert.True(read.Meta.KnownLeader);
    }

    [Fact]
    public async Task The_datacenter_parameter_reaches_the_agent_and_an_unknown_one_is_a_ConsulException()
    {
        await using var consul = await ArrangeAsync();
        var client = consul.CreateClient();
        var service = ConsulTestContext.UniqueName("orders");
        await client.RegisterServiceAsync(consul.Instance(service), Ct);
        var entry = await SingleInstanceAsync(client, service);

        var sameDc = await client.GetHealthServiceAsync(service, new ConsulHealthQuery { Datacenter = entry.Node.Datacenter }, Ct);
        var error = await Assert.ThrowsAsync<ConsulException>(() =>
            client.GetHealthServiceAsync(service, new ConsulHealthQuery { Datacenter = "no-such-dc" }, Ct));

        Assert.Single(sameDc.Value);
        Assert.Equal(ConsulErrorKind.Status, error.Kind);
        Assert.Equal(HttpStatusCode.InternalServerError, error.StatusCode);
        Assert.Contains("/v1/health/service/" + service, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Deregistering_an_unknown_instance_is_a_404_ConsulException()
    {
        await using var consul = await ArrangeAsync();
        var client = consul.CreateClient();

        var error = await Assert.ThrowsAsync<ConsulException>(() => client.DeregisterServiceAsync("no-such-instance-" + ConsulTestContext.UniqueName("x"), Ct));

        Assert.Equal(HttpStatusCode.NotFound, error.StatusCode);
        Assert.StartsWith("PUT /v1/agent/service/deregister/", error.Endpoint, StringComparison.Ordinal);
    }

    [Fact]
    public async Task KV_put_and_get_round_trip_and_a_stale_cas_fails()
    {
        await using var consul = await ArrangeAsync();
        var client = consul.CreateClient();
        var key = consul.Key("policy");

        var missing = await client.GetKeyAsync(key, cancellationToken: Ct);
        Assert.Null(missing.Value);
        Assert.True(missing.Index > 0);

        Assert.True(await client.PutKeyAsync(key, "v1", cas: 0, Ct));
        Assert.False(await client.PutKeyAsync(key, "again", cas: 0, Ct));
        var first = (await client.GetKeyAsync(key, cancellationToken: Ct)).Value!;
        Assert.Equal("v1", first.GetValueAsString());
        Assert.Equal(key, first.Key);

        Assert.True(await client.PutKeyAsync(key, "v2", cas: first.ModifyIndex, Ct));
        var second = (await client.GetKeyAsync(key, cancellationToken: Ct)).Value!;
        Assert.Equal("v2", second.GetValueAsString());
        Assert.True(second.ModifyIndex > first.ModifyIndex);
        Assert.Equal(first.CreateIndex, second.CreateIndex);

        // A writer holding the first read loses.
        Assert.False(await client.PutKeyAsync(key, "stale", cas: first.ModifyIndex, Ct));
        Assert.Equal("v2", (await client.GetKeyAsync(key, cancellationToken: Ct)).Value!.GetValueAsString());

        byte[] binary = [0, 1, 2, 250, 255];
        Assert.True(await client.PutKeyAsync(key, binary, flags: 42, cancellationToken: Ct));
        var third = (await client.GetKeyAsync(key, cancellationToken: Ct)).Value!;
        Assert.Equal(binary, third.Value.ToArray());
        Assert.Equal(42UL, third.Flags);

        Assert.True(await client.PutKeyAsync(key, string.Empty, cancellationToken: Ct));
        Assert.True((await client.GetKeyAsync(key, cancellationToken: Ct)).Value!.Value.IsEmpty);
    }

    [Fact]
    public async Task KV_delete_with_a_stale_cas_fails_and_with_the_current_one_succeeds()
    {
        await using var consul = await ArrangeAsync();
        var client = consul.CreateClient();
        var key = consul.Key("delete");
        Assert.True(await client.PutKeyAsync(key, "one", cancellationToken: Ct));
        var first = (await client.GetKeyAsync(key, cancellationToken: Ct)).Value!;
        Assert.True(await client.PutKeyAsync(key, "two", cancellationToken: Ct));

        Assert.False(await client.DeleteKeyAsync(key, cas: first.ModifyIndex, Ct));
        var current = (await client.GetKeyAsync(key, cancellationToken: Ct)).Value!;
        Assert.True(await client.DeleteKeyAsync(key, cas: current.ModifyIndex, Ct));

        Assert.Null((await client.GetKeyAsync(key, cancellationToken: Ct)).Value);
    }

    [Fact]
    public async Task A_KV_change_under_a_prefix_arrives_on_a_waiting_blocking_query()
    {
        await using var consul = await ArrangeAsync();
        var client = consul.CreateClient(o => o.Wait = TimeSpan.FromSeconds(30));
        var prefix = consul.Key("prefix") + "/";
        await using var recorder = new QueryRecorder<IReadOnlyList<ConsulKeyValue>>(client.CreateKeyValueQuery(prefix, recurse: true));
        await recorder.WaitForAsync(pairs => pairs.Count == 0, "the first (empty) answer");
        await WaitUntilBlockingAsync(consul, recorder.Query, "/v1/kv/" + prefix);

        Assert.True(await client.PutKeyAsync(prefix + "orders", "{\"routes\":[]}", cancellationToken: Ct));
        await recorder.WaitForAsync(pairs => pairs.Count == 1 && pairs[0].GetValueAsString() == "{\"routes\":[]}", "the new key");

        Assert.True(await client.DeleteKeyAsync(prefix + "orders", cancellationToken: Ct));
        await recorder.WaitForAsync(pairs => pairs.Count == 0, "the key to go");
        Assert.Null(recorder.Failure);
    }

    private static async Task<ConsulServiceEntry> SingleInstanceAsync(ConsulClient client, string service)
    {
        IReadOnlyList<ConsulServiceEntry> entries = [];
        await Eventually.WaitAsync(
            async () => (entries = (await client.GetHealthServiceAsync(service, cancellationToken: Ct)).Value).Count == 1,
            Deadline,
            $"one passing instance of {service}");
        return entries[0];
    }

    /// <summary>Waits until the query's blocking request is on the wire (and, with the double, being held).</summary>
    private static async Task WaitUntilBlockingAsync<T>(ConsulTestContext consul, ConsulBlockingQuery<T> query, string path)
    {
        await Eventually.WaitAsync(() => query.RequestCount >= 2, Deadline, "the blocking request to be sent");
        if (consul.Double is { } consulDouble)
        {
            await Eventually.WaitAsync(() => consulDouble.InFlight(path) == 1, Deadline, "the double to hold the blocking request");
        }
        else
        {
            // A real agent gives no signal that it holds the request; leave it time to arrive.
            await Task.Delay(300, Ct);
        }
    }
}

/// <summary>The Consul contract, against the in-test double.</summary>
public sealed class ConsulContractTestsAgainstTheDouble : ConsulContractTests
{
    protected override async Task<ConsulTestContext> ArrangeAsync(ConsulDoubleOptions? options = null) =>
        await ConsulTestContext.WithDoubleAsync(options);
}

/// <summary>The Consul contract, against the real agent named by <c>CONSUL_HTTP_ADDR</c>; skipped when it is not set.</summary>
public sealed class ConsulContractTestsAgainstARealAgent : ConsulContractTests
{
    protected override Task<ConsulTestContext> ArrangeAsync(ConsulDoubleOptions? options = null) =>
        Task.FromResult(ConsulTestContext.WithRealAgent());
}
