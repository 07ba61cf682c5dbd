using MeshKit.Discovery;
using MeshKit.Hosting;
using MeshKit.Transport;
using Microsoft.Extensions.Configuration;

namespace MeshKit.Tests.Transport;

/// <summary>Which request URIs a mesh client treats as mesh calls (docs/identity-and-mtls.md, "Which hosts are mesh names").</summary>
[Trait("Area", "Security")]
public sealed class MeshDestinationTests
{
    private const string TrustDomain = "test.mesh";

    /// <summary>A caller in <c>default</c> that declares <c>payments</c> and has a static entry for <c>orders.shipping</c>.</summary>
    private static (MeshDestination.Cache Cache, EditableSource Settings) NewCache(string callerNamespace = "default")
    {
        var settings = new EditableSource();
        settings.Put("Mesh:Discovery:Static:orders.shipping:0:Address", "127.0.0.1:7101");
        var configuration = new ConfigurationBuilder().Add(settings).Build();
        return (new MeshDestination.Cache(TrustDomain, new MeshDestinationNames(callerNamespace, ["payments"], configuration)), settings);
    }

    [Theory]
    [InlineData("https://orders/api/orders", "default", "orders")]
    [InlineData("https://ORDERS/", "default", "orders")]
    [InlineData("https://orders:443/", "default", "orders")]
    [InlineData("https://orders.default/", "default", "orders")]
    [InlineData("https://orders.payments/", "payments", "orders")]
    [InlineData("https://orders.shipping/", "shipping", "orders")]
    [InlineData("https://example/", "default", "example")]
    public void Mesh_names_are_mesh_calls_and_expect_the_identity_their_name_says(string uri, string expectedNamespace, string expectedService)
    {
        using var cache = NewCache().Cache;
        var destination = cache.Get(new Uri(uri));

        Assert.NotNull(destination);
        Assert.Equal($"spiffe://{TrustDomain}/ns/{expectedNamespace}/svc/{expectedService}", destination.ExpectedIdentity.Value);
        Assert.Null(cache.Explain(new Uri(uri)));
    }

    [Theory]
    [InlineData("https://example.com/", "namespace 'com' is neither this workload's namespace ('default') nor listed in Mesh:Client:Namespaces")]
    [InlineData("https://printer.local/", "special-use")]
    [InlineData("https://localhost/", "'localhost' always means this machine")]
    [InlineData("https://localhost:5001/", "port 5001")]
    [InlineData("https://app.localhost/", "special-use")]
    [InlineData("https://orders.unknownns/", "Mesh:Discovery:Static has no entry 'orders.unknownns'")]
    [InlineData("https://api.github.com/", "more than two labels")]
    [InlineData("https://orders.payments.svc.cluster.local/", "more than two labels")]
    [InlineData("https://orders.mesh-system/", "reserved for the control service")]
    [InlineData("https://orders:8443/", "port 8443")]
    [InlineData("https://orders./", "namespace part '' is empty")]
    [InlineData("https://127.0.0.1/", "IP address")]
    [InlineData("https://[::1]:5001/", "IP address")]
    [InlineData("http://orders/", "mesh calls are https")]
    [InlineData("https://my_service/", "my_service")]
    public void Other_hosts_are_not_mesh_calls_and_the_reason_says_why(string uri, string reason)
    {
        using var cache = NewCache().Cache;

        Assert.Null(cache.Get(new Uri(uri)));
        Assert.Contains(reason, cache.Explain(new Uri(uri)), StringComparison.Ordinal);
    }

    [Fact]
    public void A_two_label_host_in_the_callers_own_namespace_is_a_mesh_name_without_being_declared()
    {
        using var cache = NewCache(callerNamespace: "billing").Cache;

        Assert.Equal("spiffe://test.mesh/ns/billing/svc/orders", cache.Get(new Uri("https://orders.billing/"))!.ExpectedIdentity.Value);
        Assert.Equal("spiffe://test.mesh/ns/billing/svc/orders", cache.Get(new Uri("https://orders/"))!.ExpectedIdentity.Value);
        Assert.Null(cache.Get(new Uri("https://orders.default/")));
    }

    [Fact]
    public void A_static_entry_added_by_a_configuration_reload_makes_its_host_a_mesh_name_and_removing_it_undoes_that()
    {
        var (cache, settings) = NewCache();
        using var disposable = cache;
        var uri = new Uri("https://inventory.warehouse/");
        Assert.Null(cache.Get(uri));

        settings.Put("Mesh:Discovery:Static:inventory.warehouse:0:Address", "127.0.0.1:7102");
        Assert.Equal("spiffe://test.mesh/ns/warehouse/svc/inventory", cache.Get(uri)!.ExpectedIdentity.Value);

        settings.Remove("Mesh:Discovery:Static:inventory.warehouse:0:Address");
        Assert.Null(cache.Get(uri));
    }

    [Fact]
    public void Declared_namespaces_are_validated_with_errors_that_name_the_key()
    {
        var options = new MeshOptions { Service = { Name = "frontend" } };
        options.Client.Namespaces.Add("payments");
        options.Client.Namespaces.Add("Bad_NS");
        options.Client.Namespaces.Add("mesh-system");
        options.Client.Namespaces.Add("localhost");
        options.Client.Namespaces.Add("local");
        options.Client.NonMeshHosts = (NonMeshHostMode)7;

        var result = new MeshOptionsValidator().Validate(null, options);

        var errors = result.Failures!.ToList();
        Assert.DoesNotContain(errors, e => e.Contains("Mesh:Client:Namespaces:0", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Mesh:Client:Namespaces:1 'Bad_NS' contains 'B'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Mesh:Client:Namespaces:2 'mesh-system' is reserved", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Mesh:Client:Namespaces:3 'localhost' is a special-use DNS name", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Mesh:Client:Namespaces:4 'local' is a special-use DNS name", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Mesh:Client:NonMeshHosts is 7; use PassThrough (default) or Refuse", StringComparison.Ordinal));
    }

    /// <summary>A configuration source whose keys can be set and removed, each change firing a reload as a reloaded file does.</summary>
    private sealed class EditableSource : ConfigurationProvider, IConfigurationSource
    {
        public IConfigurationProvider Build(IConfigurationBuilder builder) => this;

        public void Put(string key, string? value)
        {
            Data[key] = value;
            OnReload();
        }

        public void Remove(string key)
        {
            Data.Remove(key);
            OnReload();
        }
    }
}
