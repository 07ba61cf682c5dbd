using System.Net.Http.Json;
using MeshKit.Testing;
using MeshKit.Testing.Consul;

namespace MeshKit.Cli.Tests;

[Trait("Area", "Cli")]
public sealed class WhyTests : IDisposable
{
    private readonly TempDirectory _files = new("cli-why");

    [Fact]
    public async Task A_request_no_route_matches_takes_the_default_route_to_every_endpoint()
    {
        var caller = Write("frontend.json", """
            { "Mesh": { "TrustDomain": "shop.mesh",
              "Policy": { "Destinations": { "orders": { "Routes": [ { "Name": "writes", "Match": { "Methods": [ "POST" ] }, "Split": { "v2": 1 } } ] } } },
              "Discovery": { "Static": { "orders": [ { "Address": "10.0.0.1:7001", "Version": "v1" }, { "Address": "10.0.0.2:7001", "Version": "v2" } ] } } } }
            """);

        var result = await Cli.RunAsync("why", "--from", "frontend", "--to", "orders", "--path", "/api/orders?page=2", "--config", caller, "--offline", "--json");

        Assert.True(result.ExitCode == 0, result.ToString());
        var json = result.Json;
        Assert.Equal("default", json.GetProperty("route").GetProperty("name").GetString());
        Assert.False(json.GetProperty("route").GetProperty("matched").GetBoolean());
        Assert.Equal("none", json.GetProperty("subset").GetProperty("reason").GetString());
        Assert.Equal(2, json.GetProperty("candidates").GetInt32());
        Assert.Equal("/api/orders", json.GetProperty("request").GetProperty("path").GetString());
        Assert.Equal("spiffe://shop.mesh/ns/default/svc/frontend", json.GetProperty("request").GetProperty("callerSpiffeId").GetString());
        Assert.Equal("unknown", json.GetProperty("authorization").GetProperty("decision").GetString());
        Assert.Equal("unknown", json.GetProperty("outcome").GetProperty("result").GetString());
    }

    [Fact]
    public async Task Authorization_matches_the_route_template_when_one_is_given_and_namespaces_are_followed()
    {
        var destination = Write("orders.json", """
            { "Mesh": { "Authorization": { "Rules": [
                { "Name": "payments-frontend", "From": { "Services": [ "payments/frontend" ] }, "To": { "Paths": [ "/api/orders/{id}" ] } } ] } } }
            """);
        string[] common = ["why", "--from", "frontend.payments", "--to", "orders.shop", "--path", "/api/orders/42", "--dest-config", destination, "--offline", "--json", "--trust-domain", "td"];

        var byPath = await Cli.RunAsync([.. common]);
        var byTemplate = await Cli.RunAsync([.. common, "--route-template", "/api/orders/{id}"]);

        Assert.Equal(1, byPath.ExitCode);
        Assert.Equal("default", byPath.Json.GetProperty("authorization").GetProperty("rule").GetString());
        Assert.Equal("denied", byPath.Json.GetProperty("outcome").GetProperty("result").GetString());
        Assert.Equal(0, byTemplate.ExitCode);
        Assert.Equal("payments-frontend", byTemplate.Json.GetProperty("authorization").GetProperty("rule").GetString());
        Assert.Equal("spiffe://td/ns/shop/svc/orders", byTemplate.Json.GetProperty("request").GetProperty("destinationSpiffeId").GetString());
    }

    [Fact]
    public async Task A_split_between_subsets_lists_each_weight_and_a_caller_policy_that_does_not_validate_exits_1()
    {
        var caller = Write("frontend.json", """
            { "Mesh": { "Policy": { "Destinations": { "orders": { "Routes": [ { "Name": "canary", "Split": { "v1": 9, "v2": 1, "v3": 0 } } ] } } },
              "Discovery": { "Static": { "orders": [ { "Address": "10.0.0.1:7001", "Version": "v1" }, { "Address": "10.0.0.3:7001", "Version": "v3" } ] } } } }
            """);
        var broken = Write("broken.json", """{ "Mesh": { "Policy": { "Destinations": { "orders": { "Timeout": "soon" } } } } }""");

        var split = await Cli.RunAsync("why", "--from", "frontend", "--to", "orders", "--path", "/", "--config", caller, "--offline", "--json");
        var invalid = await Cli.RunAsync("why", "--from", "frontend", "--to", "orders", "--path", "/", "--config", broken, "--offline", "--json");

        var subset = split.Json.GetProperty("subset");
        Assert.Equal(JsonValueKindNull, subset.GetProperty("name").ValueKind);
        Assert.False(subset.GetProperty("deterministic").GetBoolean());
        Assert.Equal([("v1", 90.0), ("v2", 10.0), ("v3", 0.0)], subset.GetProperty("split").EnumerateArray().Select(s => (s.GetProperty("subset").GetString(), s.GetProperty("percent").GetDouble())).ToList());
        var candidates = split.Json.GetProperty("endpoints").EnumerateArray().ToDictionary(e => e.GetProperty("address").GetString()!, e => e.GetProperty("candidate").GetBoolean());
        Assert.True(candidates["10.0.0.1:7001"]);
        Assert.False(candidates["10.0.0.3:7001"]);
        Assert.Equal(1, invalid.ExitCode);
        Assert.Equal("policy_invalid", invalid.Json.GetProperty("outcome").GetProperty("result").GetString());
        Assert.Contains(invalid.Json.GetProperty("policyErrors").EnumerateArray(), e => e.GetString()!.StartsWith("Mesh:Policy:Destinations:orders:Timeout", StringComparison.Ordinal));
    }

    [Fact]
    public async Task With_consul_the_passing_instances_and_their_meta_are_the_endpoints()
    {
        await using var consul = await ConsulDouble.StartAsync();
        using var http = new HttpClient { BaseAddress = consul.Address };
        foreach (var (id, address, version) in new[] { ("orders-1", "10.1.0.1", "v1"), ("orders-2", "10.1.0.2", "v2") })
        {
            using var response = await http.PutAsJsonAsync("v1/agent/service/register", new
            {
                ID = id,
                Name = "orders",
                Address = address,
                Port = 7443,
                Meta = new Dictionary<string, string> { ["version"] = version, ["zone"] = "eu-1" },
                Check = new { TTL = "30s", Status = "passing" },
            }, TestContext.Current.CancellationToken);
            response.EnsureSuccessStatusCode();
        }

        var result = await Cli.RunAsync("why", "--from", "frontend", "--to", "orders", "--path", "/api", "--header", "x-mesh-subset: v2", "--consul", consul.Address.ToString(), "--offline", "--json");

        Assert.True(result.ExitCode == 0, result.ToString());
        var endpoints = result.Json.GetProperty("endpoints").EnumerateArray().ToList();
        Assert.Equal(2, endpoints.Count);
        Assert.All(endpoints, e => Assert.Equal("consul", e.GetProperty("source").GetString()));
        var candidate = Assert.Single(endpoints, e => e.GetProperty("candidate").GetBoolean());
        Assert.Equal("10.1.0.2:7443", candidate.GetProperty("address").GetString());
        Assert.Equal("eu-1", candidate.GetProperty("zone").GetString());
    }

    [Fact]
    public async Task Without_a_reachable_control_service_why_explains_from_files_and_warns()
    {
        var caller = Write("frontend.json", """{ "Mesh": { "Discovery": { "Static": { "orders": [ { "Address": "10.0.0.1:7001" } ] } } } }""");

        var result = await Cli.RunAsync("why", "--from", "frontend", "--to", "orders", "--path", "/", "--config", caller, "--json", "--control-plane", "https://127.0.0.1:9");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("not consulted", result.Error, StringComparison.Ordinal);
        Assert.Contains(result.Json.GetProperty("sources").EnumerateArray(), s => s.GetProperty("input").GetString() == "caller central policy" && s.GetProperty("source").GetString()!.StartsWith("not consulted", StringComparison.Ordinal));
    }

    public void Dispose() => _files.Dispose();

    private const System.Text.Json.JsonValueKind JsonValueKindNull = System.Text.Json.JsonValueKind.Null;

    private string Write(string name, string text)
    {
        var path = Path.Combine(_files.Path, name);
        File.WriteAllText(path, text);
        return path;
    }
}
