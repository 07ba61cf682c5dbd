using MeshKit.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshKit.Consul.Tests;

/// <summary>Consul settings: safe defaults, and errors that name the full key and what would be valid.</summary>
[Trait("Area", "Discovery")]
public sealed class ConsulOptionsTests
{
    private const string Root = "Mesh:Discovery:Consul";

    [Fact]
    public void The_defaults_are_valid_and_match_Consul()
    {
        var options = new ConsulOptions();

        Assert.True(new ConsulOptionsValidator().Validate(null, options).Succeeded);
        Assert.Equal(new Uri("http://127.0.0.1:8500/"), options.Address);
        Assert.Equal(TimeSpan.FromMinutes(5), options.Wait);
        Assert.Null(options.Token);
        Assert.Null(options.Datacenter);
    }

    [Theory]
    [InlineData("Address", "ftp://consul:8500", "Mesh:Discovery:Consul:Address 'ftp://consul:8500/' is not an absolute http or https address")]
    [InlineData("Address", "http://consul:8500/?token=abc", "Mesh:Discovery:Consul:Address 'http://consul:8500/' carries a query")]
    [InlineData("Datacenter", "dc 1", "Mesh:Discovery:Consul:Datacenter 'dc 1' is not a datacenter name; use letters, digits, '-' and '_' only")]
    [InlineData("Wait", "00:00:00.500", "Mesh:Discovery:Consul:Wait is 00:00:00.5000000; use a value from 00:00:01 to 00:10:00 (Consul's maximum).")]
    [InlineData("Wait", "00:11:00", "Mesh:Discovery:Consul:Wait is 00:11:00; use a value from 00:00:01 to 00:10:00")]
    [InlineData("MinimumQueryInterval", "00:02:00", "Mesh:Discovery:Consul:MinimumQueryInterval is 00:02:00; use a value from 00:00:00 to 00:01:00.")]
    [InlineData("RequestTimeout", "00:00:00", "Mesh:Discovery:Consul:RequestTimeout is 00:00:00; use a value from 00:00:01 to 00:05:00.")]
    [InlineData("RetryBaseDelay", "00:00:00.001", "Mesh:Discovery:Consul:RetryBaseDelay is 00:00:00.0010000; use a value from 00:00:00.010 to 00:01:00.")]
    [InlineData("RetryMaxDelay", "00:00:00.100", "Mesh:Discovery:Consul:RetryMaxDelay is 00:00:00.1000000; use a value from Mesh:Discovery:Consul:RetryBaseDelay (00:00:00.5000000) to 00:10:00.")]
    public void A_bad_value_is_reported_with_its_full_key_and_what_is_valid(string property, string value, string expected)
    {
        var error = Assert.Single(Validate(new Dictionary<string, string?> { [$"{Root}:{property}"] = value }));

        Assert.StartsWith(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_token_with_whitespace_is_refused_without_repeating_it()
    {
        const string Token = "secret token-0123456789";

        var error = Assert.Single(Validate(new Dictionary<string, string?> { [$"{Root}:Token"] = Token }));

        Assert.StartsWith($"{Root}:Token contains whitespace or control characters", error, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", error, StringComparison.Ordinal);
    }

    [Fact]
    public void TLS_files_need_an_https_address_and_must_exist()
    {
        using var folder = new TempDirectory("consul-tls");
        var ca = Path.Combine(folder.Path, "ca.pem");
        File.WriteAllText(ca, "not checked here");
        var missing = Path.Combine(folder.Path, "missing.pem");

        var errors = Validate(new Dictionary<string, string?>
        {
            [$"{Root}:Address"] = "http://127.0.0.1:8500",
            [$"{Root}:Tls:CaFile"] = ca,
            [$"{Root}:Tls:ClientKeyFile"] = missing,
        });

        Assert.Contains(errors, e => e.StartsWith($"{Root}:Tls is set but {Root}:Address 'http://127.0.0.1:8500/' is not https", StringComparison.Ordinal));
        Assert.Contains(errors, e => e == $"{Root}:Tls:ClientKeyFile '{missing}' does not exist; give the path of a readable PEM file.");
        Assert.Contains(errors, e => e.StartsWith($"{Root}:Tls:ClientKeyFile is set without {Root}:Tls:ClientCertificateFile", StringComparison.Ordinal));
        Assert.Equal(3, errors.Count);
    }

    [Fact]
    public void The_client_refuses_invalid_settings_with_the_validators_errors()
    {
        var options = Options.Create(new ConsulOptions { Wait = TimeSpan.Zero });

        var error = Assert.Throws<OptionsValidationException>(() => new ConsulClient(options, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance));

        Assert.Contains($"{Root}:Wait is 00:00:00", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddMeshConsul_registers_one_client_and_one_watcher_and_validates_bound_settings()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddOptions<ConsulOptions>().BindConfiguration(ConsulOptions.SectionPath);
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            [$"{Root}:Address"] = "http://127.0.0.1:18500",
            [$"{Root}:Datacenter"] = "dc2",
            [$"{Root}:Wait"] = "00:00:30",
        }).Build());

        services.AddMeshConsul();
        services.AddMeshConsul();
        using var provider = services.BuildServiceProvider();

        var client = provider.GetRequiredService<ConsulClient>();
        Assert.Same(client, provider.GetRequiredService<ConsulClient>());
        Assert.Same(provider.GetRequiredService<ConsulServiceWatcher>(), provider.GetRequiredService<ConsulServiceWatcher>());
        Assert.Equal(new Uri("http://127.0.0.1:18500/"), client.Address);
        Assert.Single(provider.GetServices<IValidateOptions<ConsulOptions>>());
    }

    private static List<string> Validate(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var options = new ConsulOptions();
        configuration.GetSection(ConsulOptions.SectionPath).Bind(options);
        var result = new ConsulOptionsValidator().Validate(null, options);
        return result.Failed ? [.. result.Failures!] : [];
    }
}
