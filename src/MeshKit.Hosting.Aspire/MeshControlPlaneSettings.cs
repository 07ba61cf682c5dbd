using System.Reflection;

namespace Aspire.Hosting;

/// <summary>Settings of the mesh that <c>AddMeshControlPlane()</c> starts for an AppHost.</summary>
public sealed class MeshControlPlaneSettings
{
    /// <summary>Gets or sets the trust domain of every SPIFFE ID in the mesh. Default <c>mesh.local</c>.</summary>
    public string TrustDomain { get; set; } = "mesh.local";

    /// <summary>
    /// Gets or sets the folder that keeps the mesh's local state between runs: the development root CA (<c>ca/</c>) and
    /// the control service's data directory (<c>control-plane/</c>). Default: <c>.meshkit</c> next to the AppHost project.
    /// Keep it out of source control; it holds a CA private key.
    /// </summary>
    public string? StateDirectory { get; set; }

    /// <summary>
    /// Gets or sets the lifetime of workload certificates. Default: the control service's own default (24 hours).
    /// Short values (minutes) show rotation at work.
    /// </summary>
    public TimeSpan? CertificateLifetime { get; set; }

    /// <summary>Gets or sets a fixed port for the control service's HTTPS endpoint. Default: a free port chosen at start.</summary>
    public int? Port { get; set; }

    /// <summary>The image <c>AddMeshControlPlaneContainer()</c> runs by default.</summary>
    public const string DefaultContainerImage = "meshkit/control-plane";

    /// <summary>Gets the image tag <c>AddMeshControlPlaneContainer()</c> runs by default: this package's version, the version of the image built with it.</summary>
    public static string DefaultContainerTag { get; } =
        typeof(MeshControlPlaneSettings).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "latest";

    /// <summary>
    /// Gets or sets the control-service tool that <c>AddMeshControlPlane(name)</c> runs: the path of the
    /// <c>meshkit-control</c> executable (or of <c>MeshKit.ControlPlane.dll</c>, run with <c>dotnet</c>), absolute or
    /// relative to the AppHost project's folder. Default: the AppHost setting <c>MeshKit:ControlPlane:ToolPath</c>, else a
    /// local tool manifest that lists MeshKit.ControlPlane, else <c>meshkit-control</c> on <c>PATH</c> or in
    /// <c>~/.dotnet/tools</c>.
    /// </summary>
    public string? ToolPath { get; set; }

    /// <summary>Gets or sets the image that <c>AddMeshControlPlaneContainer()</c> runs. Default <see cref="DefaultContainerImage"/>.</summary>
    public string? ContainerImage { get; set; }

    /// <summary>Gets or sets the image tag that <c>AddMeshControlPlaneContainer()</c> runs. Default <see cref="DefaultContainerTag"/>.</summary>
    public string? ContainerTag { get; set; }
}
