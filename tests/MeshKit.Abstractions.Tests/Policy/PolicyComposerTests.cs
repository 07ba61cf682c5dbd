using MeshKit.Authorization;
using MeshKit.Policy;
using Microsoft.Extensions.Configuration;

namespace MeshKit.Abstractions.Tests.Policy;

/// <summary>Local and central policy merged by the documented precedence (docs/live-policy.md, "Precedence"), on one JSON path.</summary>
[Trait("Area", "Policy")]
public sealed class PolicyComposerTests
{
    private const string LocalJson = """
        { "Mesh": { "Service": { "Name": "frontend" },
                    "Policy": { "SubsetHeader": "x-local", "Defaults": { "Timeout": "00:00:20", "Retry": { "MaxRetries": 1 } },
                                "Destinations": { "orders": { "Timeout": "00:00:05", "Routes": [ { "Split": { "v1": 100 } } ] },
                                                  "inventory": { "Timeout": "00:00:07" } } },
                    "Authorization": { "Rules": [ { "Name": "local-rule", "From": { "Public": true } } ] } } }
        """;

    private static readonly IConfiguration Local = new ConfigurationBuilder().AddJsonStream(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(LocalJson))).Build();

    [Fact]
    public void A_central_subset_header_replaces_the_local_one_and_an_empty_one_turns_the_override_off()
    {
        // A central SubsetHeader used to remove the local one without putting its own in (the built-in header applied).
        Assert.Equal("x-central", PolicyComposer.Compose(Local, """{ "Policy": { "SubsetHeader": "x-central" } }""").Snapshot!.SubsetHeader);
        Assert.Null(PolicyComposer.Compose(Local, """{ "Policy": { "SubsetHeader": "" } }""").Snapshot!.SubsetHeader);
    }

    [Fact]
    public void Central_policy_replaces_defaults_destinations_and_authorization_whole_and_the_rest_stays_local()
    {
        var result = PolicyComposer.Compose(Local, """
            { "Policy": { "SubsetHeader": "x-central", "Defaults": { "AttemptTimeout": "00:00:02" },
                          "Destinations": { "orders": { "Retry": { "MaxRetries": 3 } } } },
              "Authorization": { "DefaultAction": "Allow" } }
            """);

        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        var snapshot = result.Snapshot!;
        Assert.Equal("x-central", snapshot.SubsetHeader);

        // Defaults replaced whole: the local Timeout and MaxRetries are gone, the built-in ones apply.
        Assert.Equal(TimeSpan.FromSeconds(30), snapshot.Defaults.Timeout);
        Assert.Equal(TimeSpan.FromSeconds(2), snapshot.Defaults.AttemptTimeout);
        Assert.Equal(2, snapshot.Defaults.Retry.MaxRetries);

        // orders replaced whole (its local Timeout and routes are gone); inventory, only local, stays.
        var orders = snapshot.For("orders");
        Assert.Equal((3, TimeSpan.FromSeconds(30)), (orders.Retry.MaxRetries, orders.Timeout));
        Assert.Empty(orders.Routes);
        Assert.Equal(TimeSpan.FromSeconds(7), snapshot.For("inventory").Timeout);

        // Authorization replaced whole: no local rule is left.
        Assert.Equal(AuthorizationAction.Allow, snapshot.Authorization.DefaultAction);
        Assert.Empty(snapshot.Authorization.Rules);
    }

    [Fact]
    public void A_merged_policy_has_the_version_of_the_same_policy_written_locally_and_no_central_document_is_the_local_policy()
    {
        var merged = PolicyComposer.Compose(Local, """{ "Policy": { "Destinations": { "orders": { "Timeout": "00:00:09" } } } }""");
        var sameLocally = PolicyReader.ReadJson(LocalJson.Replace("""{ "Timeout": "00:00:05", "Routes": [ { "Split": { "v1": 100 } } ] }""", """{ "Timeout": "00:00:09" }""", StringComparison.Ordinal));
        Assert.True(merged.IsValid && sameLocally.IsValid, string.Join("\n", merged.Errors.Concat(sameLocally.Errors)));
        Assert.Equal(sameLocally.Snapshot!.Version, merged.Snapshot!.Version);

        Assert.Equal(PolicyReader.Read(Local.GetSection("Mesh")).Snapshot!.Version, PolicyComposer.Compose(Local, centralJson: null).Snapshot!.Version);
    }

    [Fact]
    public void A_central_document_that_is_not_JSON_is_one_error_on_the_central_policy_and_a_bad_central_value_names_its_key()
    {
        var broken = PolicyComposer.Compose(Local, """{ "Policy": """);
        var error = Assert.Single(broken.Errors);
        Assert.Equal("(central policy)", error.Path);
        Assert.StartsWith("is not valid JSON: ", error.Message, StringComparison.Ordinal);

        var invalid = PolicyComposer.Compose(Local, """{ "Policy": { "Destinations": { "orders": { "Timeout": "soon" } } } }""");
        Assert.Equal("Mesh:Policy:Destinations:orders:Timeout", Assert.Single(invalid.Errors).Path);
    }
}
