using MeshKit.Testing;

namespace MeshKit.Cli.Tests;

[Trait("Area", "Cli")]
public sealed class CertInspectTests
{
    [Fact]
    public async Task Inspecting_a_mesh_endpoint_shows_the_SVID_it_presents_and_validates_it_against_the_bundle()
    {
        await using var bed = await CliBed.StartAsync();
        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", CliBed.JoinToken, map: app => app.MapGetHello());

        var json = await bed.RunAsync("cert", "inspect", $"127.0.0.1:{orders.MeshEndPoint.Port}", "--server-name", "orders", "--json");
        var table = await bed.RunAsync("cert", "inspect", $"127.0.0.1:{orders.MeshEndPoint.Port}", "--server-name", "orders");

        Assert.True(json.ExitCode == 0, json.ToString());
        var leaf = json.Json.GetProperty("certificates")[0];
        Assert.Equal("leaf", leaf.GetProperty("role").GetString());
        Assert.Equal($"spiffe://{ControlPlaneHost.TrustDomain}/ns/default/svc/orders", leaf.GetProperty("spiffeId").GetString());
        Assert.InRange(leaf.GetProperty("expiresInSeconds").GetDouble(), 60, 3700);
        var validation = json.Json.GetProperty("validation");
        Assert.True(validation.GetProperty("valid").GetBoolean());
        Assert.Contains("MeshKit Root CA", validation.GetProperty("root").GetString(), StringComparison.Ordinal);
        Assert.Equal(0, table.ExitCode);
        Assert.Contains("spiffe://test.mesh/ns/default/svc/orders", table.Out, StringComparison.Ordinal);
        Assert.Contains("valid", table.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Inspecting_the_control_service_shows_its_identity()
    {
        await using var bed = await CliBed.StartAsync();

        var result = await bed.RunAsync("cert", "inspect", bed.ControlPlane.BaseAddress.Authority, "--json");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal($"spiffe://{ControlPlaneHost.TrustDomain}/ns/mesh-system/svc/control-plane", result.Json.GetProperty("certificates")[0].GetProperty("spiffeId").GetString());
        Assert.True(result.Json.GetProperty("validation").GetProperty("valid").GetBoolean());
    }

    [Fact]
    public async Task A_certificate_file_is_validated_and_a_foreign_or_expired_one_exits_1()
    {
        using var files = new TempDirectory("cli-cert");
        using var root = TestCertificates.CreateRootCa("Inspect Test CA");
        using var leaf = TestCertificates.CreateSvid(root, "spiffe://test.mesh/ns/default/svc/orders");
        using var expired = TestCertificates.CreateSvid(root, "spiffe://test.mesh/ns/default/svc/orders", DateTimeOffset.UtcNow.AddHours(-2), DateTimeOffset.UtcNow.AddHours(-1));
        using var foreign = TestCertificates.CreateRootCa("Someone Else's CA");
        var leafFile = Write(files, "leaf.pem", leaf.ExportCertificatePem());
        var expiredFile = Write(files, "expired.pem", expired.ExportCertificatePem());
        var bundle = Write(files, "bundle.pem", root.ExportCertificatePem());
        var foreignBundle = Write(files, "foreign.pem", foreign.ExportCertificatePem());

        var valid = await Cli.RunAsync("cert", "inspect", leafFile, "--trust-bundle", bundle, "--json");
        var unchecked_ = await Cli.RunAsync("cert", "inspect", leafFile, "--json");
        var untrusted = await Cli.RunAsync("cert", "inspect", leafFile, "--trust-bundle", foreignBundle, "--json");
        var old = await Cli.RunAsync("cert", "inspect", expiredFile, "--trust-bundle", bundle);

        Assert.True(valid.ExitCode == 0, valid.ToString());
        Assert.Equal("spiffe://test.mesh/ns/default/svc/orders", valid.Json.GetProperty("validation").GetProperty("spiffeId").GetString());
        Assert.Equal(0, unchecked_.ExitCode);
        Assert.False(unchecked_.Json.GetProperty("validation").GetProperty("checked").GetBoolean());
        Assert.Equal(1, untrusted.ExitCode);
        Assert.Equal("UntrustedChain", untrusted.Json.GetProperty("validation").GetProperty("rejection").GetString());
        Assert.Equal(1, old.ExitCode);
        Assert.Contains("expired", old.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_target_that_is_neither_a_file_nor_reachable_is_reported()
    {
        var neither = await Cli.RunAsync("cert", "inspect", "no-such-file.pem");
        var closed = await Cli.RunAsync("cert", "inspect", "127.0.0.1:9");

        Assert.Equal(2, neither.ExitCode);
        Assert.Equal(3, closed.ExitCode);
    }

    private static string Write(TempDirectory files, string name, string text)
    {
        var path = Path.Combine(files.Path, name);
        File.WriteAllText(path, text);
        return path;
    }
}

internal static class AppExtensions
{
    public static void MapGetHello(this Microsoft.AspNetCore.Builder.WebApplication app) =>
        Microsoft.AspNetCore.Builder.EndpointRouteBuilderExtensions.MapGet(app, "/hello", () => "hello");
}
