using MeshKit.Authorization;
using MeshKit.Identity;
using MeshKit.Policy;
using MeshKit.Routing;
using Microsoft.Extensions.Configuration;

namespace MeshKit.Abstractions.Tests.Policy;

/// <summary>
/// gRPC names in policy: <c>Match:Grpc</c> of a route and <c>To:Grpc</c> of an authorization rule are shorthands for the
/// paths gRPC calls have (<c>/package.Service/Method</c>), and a malformed name is an error naming its full key.
/// </summary>
[Trait("Area", "Grpc")]
public sealed class GrpcPolicyReaderTests
{
    private const string Routes = "Mesh:Policy:Destinations:inventory:Routes";
    private const string Rules = "Mesh:Authorization:Rules";

    private static readonly SpiffeId Frontend = SpiffeId.Parse("spiffe://mesh.local/ns/shop/svc/frontend");

    private static PolicyReadResult Read(Dictionary<string, string?> settings) =>
        PolicyReader.Read(new ConfigurationBuilder().AddInMemoryCollection(settings).Build().GetSection("Mesh"));

    [Fact]
    public void A_route_matching_a_gRPC_method_matches_its_path_exactly_and_one_matching_a_service_matches_all_its_methods()
    {
        var result = Read(new()
        {
            [$"{Routes}:0:Match:Grpc"] = "inventory.v1.Inventory/Reserve",
            [$"{Routes}:0:Split:v2"] = "1",
            [$"{Routes}:1:Match:Grpc"] = "inventory.v1.Inventory",
            [$"{Routes}:1:Split:v1"] = "1",
            [$"{Routes}:2:Match:Grpc"] = "Greeter/*",
            [$"{Routes}:2:Split:v3"] = "1",
        });

        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        var policy = result.Snapshot!.For("inventory");
        Assert.Equal((PathMatchKind.Exact, "/inventory.v1.Inventory/Reserve"), (policy.Routes[0].Match.PathKind, policy.Routes[0].Match.Path));
        Assert.Equal((PathMatchKind.Prefix, "/inventory.v1.Inventory"), (policy.Routes[1].Match.PathKind, policy.Routes[1].Match.Path));
        Assert.Equal((PathMatchKind.Prefix, "/Greeter"), (policy.Routes[2].Match.PathKind, policy.Routes[2].Match.Path));

        var none = new NoHeaders();
        Assert.Equal(0, RouteMatcher.Match(policy, "POST", "/inventory.v1.Inventory/Reserve", none)!.Index);
        Assert.Equal(1, RouteMatcher.Match(policy, "POST", "/inventory.v1.Inventory/Release", none)!.Index);
        Assert.Equal(1, RouteMatcher.Match(policy, "POST", "/inventory.v1.Inventory/ReserveMany", none)!.Index);
        Assert.Equal(2, RouteMatcher.Match(policy, "POST", "/Greeter/SayHello", none)!.Index);
        Assert.Null(RouteMatcher.Match(policy, "POST", "/inventory.v1.InventoryAdmin/Reserve", none));
        Assert.Null(RouteMatcher.Match(policy, "POST", "/inventory.v2.Inventory/Reserve", none));
    }

    [Fact]
    public void A_rule_naming_gRPC_methods_and_services_matches_their_endpoints_and_adds_them_to_its_paths()
    {
        var result = Read(new()
        {
            ["Mesh:Authorization:DefaultAction"] = "Deny",
            [$"{Rules}:0:Name"] = "no-reserve",
            [$"{Rules}:0:Action"] = "Deny",
            [$"{Rules}:0:To:Grpc"] = "inventory.v1.Inventory/Reserve",
            [$"{Rules}:1:Name"] = "frontend-uses-inventory",
            [$"{Rules}:1:From:Services:0"] = "frontend",
            [$"{Rules}:1:To:Paths:0"] = "/healthz",
            [$"{Rules}:1:To:Grpc:0"] = "inventory.v1.Inventory",
            [$"{Rules}:1:To:Grpc:1"] = "grpc.health.v1.Health/*",
        });

        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        var authorization = result.Snapshot!.Authorization;
        Assert.Equal(["/inventory.v1.Inventory/Reserve"], authorization.Rules[0].To.Paths);
        Assert.Equal(["/healthz", "/inventory.v1.Inventory/*", "/grpc.health.v1.Health/*"], authorization.Rules[1].To.Paths);

        // Grpc.AspNetCore's endpoints have the route pattern /package.Service/Method.
        Decide("/inventory.v1.Inventory/Reserve", allowed: false, "no-reserve");
        Decide("/inventory.v1.Inventory/Release", allowed: true, "frontend-uses-inventory");
        Decide("/grpc.health.v1.Health/Check", allowed: true, "frontend-uses-inventory");
        Decide("/healthz", allowed: true, "frontend-uses-inventory");
        Decide("/inventory.v1.InventoryAdmin/Reserve", allowed: false, "default");

        void Decide(string target, bool allowed, string rule)
        {
            var decision = MeshAuthorizationEvaluator.Evaluate(authorization, Frontend, "POST", target);
            Assert.Equal((allowed, rule), (decision.Allowed, decision.RuleName));
        }
    }

    [Theory]
    [InlineData("/inventory.v1.Inventory/Reserve", "a gRPC name has no leading '/': write 'inventory.v1.Inventory/Reserve'")]
    [InlineData("inventory.v1.Inventory/Reserve/Now", "the method 'Reserve/Now' is not a protobuf name")]
    [InlineData("inventory.v1.Inventory/Re-serve", "the method 'Re-serve' is not a protobuf name")]
    [InlineData("inventory..Inventory/Reserve", "'inventory..Inventory' has an empty part between dots")]
    [InlineData("inventory.v1.*", "'inventory.v1.*' has '*', which is not a protobuf name")]
    [InlineData("inventory.1v.Inventory", "has '1v', which is not a protobuf name")]
    [InlineData("*", "has '*', which is not a protobuf name")]
    [InlineData("inventory.v1.Inventory/", "the method '' is not a protobuf name")]
    [InlineData("", "is empty")]
    public void A_malformed_gRPC_name_is_an_error_naming_its_full_key_in_a_route_and_in_a_rule(string name, string why)
    {
        var result = Read(new()
        {
            [$"{Routes}:0:Match:Grpc"] = name,
            [$"{Rules}:0:To:Grpc:0"] = "inventory.v1.Inventory",
            [$"{Rules}:0:To:Grpc:1"] = name,
        });

        Assert.False(result.IsValid);
        var byPath = result.Errors.ToDictionary(e => e.Path, e => e.Message);
        Assert.Equal(2, byPath.Count);
        Assert.Contains(why, byPath[$"{Routes}:0:Match:Grpc"], StringComparison.Ordinal);
        Assert.Contains(why, byPath[$"{Rules}:0:To:Grpc:1"], StringComparison.Ordinal);
        Assert.Contains(name.StartsWith('/') ? "(or match the path with Path)" : "package.Service/Method", byPath[$"{Rules}:0:To:Grpc:1"], StringComparison.Ordinal);
    }

    [Fact]
    public void A_route_with_both_Grpc_and_Path_or_with_a_list_of_gRPC_names_is_refused()
    {
        var result = Read(new()
        {
            [$"{Routes}:0:Match:Grpc"] = "inventory.v1.Inventory/Reserve",
            [$"{Routes}:0:Match:Path"] = "/inventory.v1.Inventory",
            [$"{Routes}:1:Match:Grpc:0"] = "inventory.v1.Inventory/Reserve",
        });

        Assert.False(result.IsValid);
        var byPath = result.Errors.ToDictionary(e => e.Path, e => e.Message);
        Assert.Equal(2, byPath.Count);
        Assert.Contains("is set with Path; both match the request's path, so use one", byPath[$"{Routes}:0:Match:Grpc"], StringComparison.Ordinal);
        Assert.Contains("is a list or section; a route matches one gRPC method or service", byPath[$"{Routes}:1:Match:Grpc"], StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("null")]
    [InlineData("{}")]
    public void An_empty_Grpc_key_in_json_is_refused_rather_than_matching_every_path(string empty)
    {
        var result = PolicyReader.ReadJson($$$"""
            {
              "Policy": { "Destinations": { "inventory": { "Routes": [ { "Match": { "Grpc": {{{empty}}} }, "Split": { "v2": 1 } } ] } } },
              "Authorization": { "Rules": [ { "From": { "Services": [ "orders" ] }, "To": { "Grpc": {{{empty}}} } } ] }
            }
            """);

        Assert.False(result.IsValid);
        var byPath = result.Errors.ToDictionary(e => e.Path, e => e.Message);
        Assert.Equal(2, byPath.Count);
        Assert.StartsWith("is empty", byPath["Policy:Destinations:inventory:Routes:0:Match:Grpc"], StringComparison.Ordinal);
        Assert.Matches("^is (empty|an empty list)", byPath.Single(e => e.Key.StartsWith("Authorization:Rules:0:To:Grpc", StringComparison.Ordinal)).Value);
    }

    [Fact]
    public void The_shorthands_read_the_same_from_a_json_document()
    {
        var result = PolicyReader.ReadJson("""
            {
              "Policy": { "Destinations": { "inventory": { "Routes": [
                { "Name": "reserve-on-v2", "Match": { "Grpc": "inventory.v1.Inventory/Reserve" }, "Split": { "v2": 1 } } ] } } },
              "Authorization": { "Rules": [
                { "From": { "Services": [ "orders" ] }, "To": { "Grpc": [ "inventory.v1.Inventory/Reserve" ] } } ] }
            }
            """);

        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        Assert.Equal("/inventory.v1.Inventory/Reserve", Assert.Single(result.Snapshot!.For("inventory").Routes).Match.Path);
        Assert.Equal(["/inventory.v1.Inventory/Reserve"], Assert.Single(result.Snapshot.Authorization.Rules).To.Paths);
    }

    private readonly struct NoHeaders : IHeaderSource
    {
        public string? Get(string name) => null;
    }
}
