using MeshKit.Hosting;

namespace MeshKit.Tests.Hosting;

[Trait("Area", "Hosting")]
public sealed class MeshOptionsValidatorTests
{
    private static MeshOptions Valid(string? version) => new()
    {
        Service = { Name = "orders", Version = version },
        ControlPlane = { Address = new Uri("https://127.0.0.1:7443"), TrustBundlePath = "trust-bundle.pem" },
    };

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("v2")]
    [InlineData("1.4.0-rc_1")]
    public void Versions_that_a_subset_can_name_and_no_version_are_accepted(string? version)
    {
        var result = new MeshOptionsValidator().Validate(null, Valid(version));

        Assert.True(result.Succeeded, result.FailureMessage);
    }

    [Theory]
    [InlineData("mesh/ready")]
    [InlineData("/ready?x=1")]
    public void A_readiness_path_that_is_not_a_path_is_refused_naming_the_full_key(string path)
    {
        var options = Valid(version: null);
        options.Health.ReadinessPath = path;

        var result = new MeshOptionsValidator().Validate(null, options);

        Assert.False(result.Succeeded);
        Assert.StartsWith($"Mesh:Health:ReadinessPath '{path}' ", Assert.Single(result.Failures!), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("v2+build", "contains '+' at position 2")]
    [InlineData("v 2", "contains '\\u0020' at position 1")]
    [InlineData("-v2", "contains '-' at position 0")]
    [InlineData("v111111111111111111111111111111111111111111111111111111111111111", "longer than 63 characters")]
    public void A_version_no_subset_could_name_is_refused_naming_the_full_key_and_why(string version, string reason)
    {
        var result = new MeshOptionsValidator().Validate(null, Valid(version));

        Assert.False(result.Succeeded);
        var error = Assert.Single(result.Failures!);
        Assert.StartsWith($"Mesh:Service:Version '{version}' ", error, StringComparison.Ordinal);
        Assert.Contains(reason, error, StringComparison.Ordinal);
        Assert.Contains("starting and ending with a letter or digit", error, StringComparison.Ordinal);
    }
}
