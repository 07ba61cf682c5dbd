using MeshKit.Testing;

namespace MeshKit.Tests.Identity;

/// <summary>A control service shared by a test class, with one join token that grants every service the tests use.</summary>
public sealed class MeshTestBed : IAsyncLifetime
{
    public const string Token = "mesh-tests-join-token-0123456789";

    public ControlPlaneHost ControlPlane { get; private set; } = null!;

    /// <summary>Gets or sets the certificates' lifetime for a bed a test starts itself (the 5 s default otherwise).</summary>
    public string? CertificateLifetime { get; init; }

    /// <summary>The control-service settings of the join token <see cref="Token"/>, for tests that start their own control service.</summary>
    public static Dictionary<string, string?> TokenSettings()
    {
        var settings = new Dictionary<string, string?> { ["ControlPlane:JoinTokens:tests:Token"] = Token };
        string[] services = ["frontend", "orders", "inventory", "evil", "caller", "callee"];
        for (var i = 0; i < services.Length; i++)
        {
            settings[$"ControlPlane:JoinTokens:tests:Services:{i}"] = services[i];
        }

        return settings;
    }

    public async ValueTask InitializeAsync()
    {
        var settings = TokenSettings();

        if (Chaos.ScenarioLoad.Soak)
        {
            // tests/soak/run.sh: rotations every 20 s instead of every 2.5 s.
            settings["ControlPlane:CertificateLifetime"] = "00:00:40";
        }

        if (CertificateLifetime is not null)
        {
            settings["ControlPlane:CertificateLifetime"] = CertificateLifetime;
        }

        ControlPlane = await ControlPlaneHost.StartAsync(settings);
    }

    public async ValueTask DisposeAsync() => await ControlPlane.DisposeAsync();
}
