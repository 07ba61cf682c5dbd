using MeshKit.Identity;

namespace MeshKit.Abstractions.Tests.Identity;

[Trait("Area", "Identity")]
public sealed class SpiffeIdTests
{
    [Theory]
    [InlineData("spiffe://mesh.local/ns/default/svc/orders", "mesh.local", "default", "orders")]
    [InlineData("spiffe://td/ns/payments/svc/billing-v2", "td", "payments", "billing-v2")]
    [InlineData("spiffe://a-b_c.d/ns/n1/svc/s1", "a-b_c.d", "n1", "s1")]
    public void A_canonical_id_parses_into_its_parts(string text, string td, string ns, string svc)
    {
        var id = SpiffeId.Parse(text);
        Assert.Equal(td, id.TrustDomain);
        Assert.Equal(ns, id.Namespace);
        Assert.Equal(svc, id.Service);
        Assert.Equal(text, id.Value);
        Assert.Equal(id, SpiffeId.Create(td, ns, svc));
    }

    [Theory]
    [InlineData("spiffe://td/ns/evil/../svc/orders", "'.' and '..'")]
    [InlineData("spiffe://td/ns/./svc/orders", "'.' and '..'")]
    [InlineData("spiffe://td/ns/default/svc/ord%65rs", "percent-escapes")]
    [InlineData("spiffe://td/ns/default%2Fsvc/svc/orders", "percent-escapes")]
    [InlineData("spiffe://td/ns//svc/orders", "empty path segments")]
    [InlineData("spiffe://td/ns/default/svc/orders/", "trailing")]
    [InlineData("spiffe://TD/ns/default/svc/orders", "trust domain")]
    [InlineData("spiffe://td:8443/ns/default/svc/orders", "trust domain")]
    [InlineData("spiffe://user@td/ns/default/svc/orders", "trust domain")]
    [InlineData("spiffe:///ns/default/svc/orders", "trust domain is empty")]
    [InlineData("Spiffe://td/ns/default/svc/orders", "must start with")]
    [InlineData("https://td/ns/default/svc/orders", "must start with")]
    [InlineData("spiffe://td", "no workload")]
    [InlineData("spiffe://td/ns/default/svc/orders?x", "query or fragment")]
    [InlineData("spiffe://td/ns/default/svc/orders#x", "query or fragment")]
    [InlineData("spiffe://td/ns/default/sa/orders", "/ns/<namespace>/svc/<service>")]
    [InlineData("spiffe://td/ns/default/svc/orders/extra", "/ns/<namespace>/svc/<service>")]
    [InlineData("spiffe://td/ns/Default/svc/orders", "namespace")]
    [InlineData("spiffe://td/ns/default/svc/-orders", "service name")]
    [InlineData("spiffe://td/ns/default/svc/or_ders", "service name")]
    [InlineData("", "empty")]
    public void A_non_canonical_id_is_refused_with_the_reason(string text, string reason)
    {
        Assert.False(SpiffeId.TryParse(text, out var id, out var error));
        Assert.Null(id);
        Assert.Contains(reason, error, StringComparison.Ordinal);
        var thrown = Assert.Throws<FormatException>(() => SpiffeId.Parse(text));
        Assert.Contains(reason, thrown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Uri_normalisation_would_have_accepted_the_traversal_but_the_parser_does_not()
    {
        // The reason for a parser of our own: System.Uri turns this into /ns/svc/orders.
        const string Traversal = "spiffe://td/ns/evil/../svc/orders";
        Assert.Equal("/ns/svc/orders", new Uri(Traversal).AbsolutePath);
        Assert.False(SpiffeId.TryParse(Traversal, out _));
    }

    [Fact]
    public void An_id_over_2048_characters_is_refused()
    {
        var text = "spiffe://td/ns/default/svc/" + new string('a', 2100);
        Assert.False(SpiffeId.TryParse(text, out _, out var error));
        Assert.Contains("2048", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_names_the_bad_part()
    {
        var ex = Assert.Throws<ArgumentException>(() => SpiffeId.Create("td", "default", "Orders"));
        Assert.Contains("Service name 'Orders'", ex.Message, StringComparison.Ordinal);
    }
}
