using MeshKit.Identity;

namespace MeshKit.Abstractions.Tests;

[Trait("Area", "Identity")]
public sealed class MeshNamesTests
{
    private static readonly string Long63 = "v" + new string('1', 62);
    private static readonly string Long64 = "v" + new string('1', 63);

    [Theory]
    [InlineData("orders")]
    [InlineData("billing-v2")]
    [InlineData("a")]
    [InlineData("0")]
    [InlineData("abcdefghijklmnopqrstuvwxyz0123456789-abcdefghijklmnopqrstuvwxyz")]
    public void Service_names_and_namespaces_accept_DNS_labels(string name)
    {
        Assert.True(MeshNames.IsValidServiceName(name, out var why), why);
        Assert.True(MeshNames.IsValidNamespace(name, out why), why);
    }

    [Theory]
    [InlineData("", "is empty")]
    [InlineData("Orders", "contains 'O' at position 0")]
    [InlineData("-orders", "contains '-' at position 0")]
    [InlineData("orders-", "contains '-' at position 6")]
    [InlineData("orders_v2", "contains '_'")]
    [InlineData("orders.shop", "contains '.'")]
    [InlineData("abcdefghijklmnopqrstuvwxyz0123456789-abcdefghijklmnopqrstuvwxyz0", "longer than 63")]
    public void Service_names_and_namespaces_refuse_what_is_not_a_DNS_label_and_say_why(string name, string reason)
    {
        Assert.False(MeshNames.IsValidServiceName(name, out var why));
        Assert.Contains(reason, why, StringComparison.Ordinal);
        Assert.False(MeshNames.IsValidNamespace(name, out why));
        Assert.Contains(reason, why, StringComparison.Ordinal);
    }

    [Fact]
    public void Only_mesh_system_is_the_reserved_namespace()
    {
        Assert.True(MeshNames.IsReservedNamespace("mesh-system"));
        Assert.False(MeshNames.IsReservedNamespace("mesh-systems"));
        Assert.False(MeshNames.IsReservedNamespace("default"));
        Assert.Equal(SpiffeId.ReservedNamespace, MeshNames.ReservedNamespace);
        Assert.Equal(SpiffeId.DefaultNamespace, MeshNames.DefaultNamespace);
    }

    [Theory]
    [InlineData("mesh.local", true)]
    [InlineData("example.org", true)]
    [InlineData("a_b-c.d", true)]
    [InlineData("", false)]
    [InlineData("Mesh.local", false)]
    [InlineData("mesh.local:8443", false)]
    [InlineData("user@mesh.local", false)]
    public void Trust_domains_follow_the_SPIFFE_rules(string trustDomain, bool valid)
    {
        Assert.Equal(valid, MeshNames.IsValidTrustDomain(trustDomain, out var why));
        Assert.Equal(valid, why is null);
        Assert.Equal(SpiffeId.IsValidTrustDomain(trustDomain, out _), valid);
    }

    [Theory]
    [InlineData("v1")]
    [InlineData("V2")]
    [InlineData("1.4.0")]
    [InlineData("2024-06-01")]
    [InlineData("canary_eu")]
    [InlineData("rc.1-beta_2")]
    [InlineData("7")]
    public void Versions_and_subset_names_accept_label_values(string value)
    {
        Assert.True(MeshNames.IsValidVersion(value, out var why), why);
        Assert.True(MeshNames.IsValidSubsetName(value, out why), why);
    }

    [Fact]
    public void A_version_may_be_63_characters_long_but_not_64()
    {
        Assert.True(MeshNames.IsValidVersion(Long63, out _));
        Assert.False(MeshNames.IsValidVersion(Long64, out var why));
        Assert.Contains("longer than 63 characters", why, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("", "is empty")]
    [InlineData("v 2", "contains '\\u0020' at position 1")]
    [InlineData("v2+build", "contains '+' at position 2")]
    [InlineData("v/2", "contains '/' at position 1")]
    [InlineData("vé", "contains 'é' at position 1")]
    [InlineData("-v2", "contains '-' at position 0")]
    [InlineData(".", "contains '.' at position 0")]
    [InlineData("..", "contains '.' at position 0")]
    [InlineData("v2.", "contains '.' at position 2")]
    [InlineData("_v2", "contains '_' at position 0")]
    [InlineData("v2\n", "contains '\\u000a' at position 2")]
    public void Versions_and_subset_names_refuse_other_text_and_say_what_would_be_valid(string value, string reason)
    {
        Assert.False(MeshNames.IsValidVersion(value, out var why));
        Assert.Contains(reason, why, StringComparison.Ordinal);
        Assert.Contains("use 1 to 63 letters, digits, '.', '-' and '_', starting and ending with a letter or digit", why, StringComparison.Ordinal);
        Assert.False(MeshNames.IsValidSubsetName(value, out var subsetWhy));
        Assert.Equal(why, subsetWhy);
    }

    /// <summary>
    /// Before issue 16 a version was judged three ways: the Aspire integration (1 to 63 of [A-Za-z0-9._-]), the workload's
    /// settings validator (at most 64 characters of anything, empty allowed) and the policy reader's subset names (1 to 64
    /// of [A-Za-z0-9._-]). The rules are kept here, as they were, to show the inputs on which they disagreed and which
    /// answer the one rule gives.
    /// </summary>
    [Theory]
    [InlineData("v2+build", false)] // Aspire no, validator yes, subset no
    [InlineData("v 2", false)] // Aspire no, validator yes, subset no
    [InlineData("vé", false)] // Aspire no, validator yes, subset no
    [InlineData("", false)] // Aspire no, validator yes, subset no (the validator still reads an empty version as none)
    [InlineData("64", false)] // 64 characters: Aspire no, validator yes, subset yes
    [InlineData("-v2", false)] // all three said yes; a leading '-' reads as a command-line option
    [InlineData("v2.", false)] // all three said yes
    [InlineData("63", true)] // 63 characters: all three said yes
    [InlineData("v2", true)]
    public void The_old_rules_disagreed_on_versions_and_the_one_rule_decides(string value, bool valid)
    {
        value = value switch
        {
            "63" => Long63,
            "64" => Long64,
            _ => value,
        };

        var aspire = value.Length is > 0 and <= 63 && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_');
        var validator = value.Length <= 64;
        var subset = value.Length is > 0 and <= 64 && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');
        var oldAnswers = new[] { aspire, validator, subset };

        Assert.Equal(valid, MeshNames.IsValidVersion(value, out _));
        Assert.Equal(valid, MeshNames.IsValidSubsetName(value, out _));
        if (valid)
        {
            Assert.All(oldAnswers, Assert.True);
        }
        else
        {
            // Each input that is now refused was accepted by at least one old rule.
            Assert.Contains(true, oldAnswers);
        }
    }

    [Theory]
    [InlineData("orders", true, null)]
    [InlineData("orders.payments", true, null)]
    [InlineData("orders.mesh-system", true, null)]
    [InlineData("Orders", false, "contains 'O' at position 0")]
    [InlineData("orders.", false, "has a namespace part that is empty")]
    [InlineData(".payments", false, "has a service part that is empty")]
    [InlineData("orders.pay.ments", false, "has a namespace part that contains '.'")]
    [InlineData("orders/payments", false, "contains '/'")]
    public void A_service_key_is_a_service_or_service_dot_namespace(string key, bool valid, string? reason)
    {
        Assert.Equal(valid, MeshNames.IsValidServiceKey(key, out var why));
        if (reason is not null)
        {
            Assert.Contains(reason, why, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("frontend", true, null)]
    [InlineData("shop/frontend", true, null)]
    [InlineData("Shop/frontend", false, "has a namespace part that contains 'S'")]
    [InlineData("shop/", false, "has a service part that is empty")]
    [InlineData("shop/front/end", false, "has a service part that contains '/'")]
    [InlineData("frontend.shop", false, "contains '.'")]
    public void A_service_reference_is_a_service_or_namespace_slash_service(string reference, bool valid, string? reason)
    {
        Assert.Equal(valid, MeshNames.IsValidServiceReference(reference, out var why));
        if (reason is not null)
        {
            Assert.Contains(reason, why, StringComparison.Ordinal);
        }
    }
}
