using System.Reflection;

namespace Aspire.Hosting;

/// <summary>Settings of the mesh that <c>AddMeshControlPlane()</c> starts for an AppHost.</summary>
public sealed class MeshControlPlaneSettings
{
    /// <summary>Gets or sets the trust domain of every SPIFFE ID in the mesh. Default <c>mesh.local</c>.</summary>
    public string TrustDomain { get; set; } = "mesh.local";

    /// <summary>
    /// Gets or sets the folder that keeps the mesh's local state between runs: the development root CA (<c>ca/</c>) and
    /// the control service's data directory (<c>control-plane/</c>), or with several <see cref="Replicas"/> a folder per
    /// replica (<c>replicas/&lt;name&gt;/</c>: its intermediate CA and its data directory). Default: <c>.meshkit</c> next to
    /// the AppHost project. Keep it out of source control; it holds CA private keys.
    /// </summary>
    public string? StateDirectory { get; set; }

    /// <summary>
    /// Gets or sets the lifetime of workload certificates. Default: the control service's own default (24 hours).
    /// Short values (minutes) show rotation at work.
    /// </summary>
    public TimeSpan? CertificateLifetime { get; set; }

    /// <summary>
    /// Gets or sets a fixed port for the control service's HTTPS endpoint (with several <see cref="Replicas"/>, replica
    /// <c>i</c> listens on <c>Port + i</c>). Default: a free port chosen at start.
    /// </summary>
    public int? Port { get; set; }

    /// <summary>The most replicas <see cref="Replicas"/> accepts.</summary>
    public const int MaxReplicas = 16;

    /// <summary>
    /// Gets or sets how many control-service replicas to run. Default 1: one resource, as always. More than one needs the
    /// AppHost setting <c>Consul:Address</c>, through which the replicas share their state (central policy, revocations,
    /// admin credentials, the workload registry, leadership); without it the AppHost refuses to build. The first replica is
    /// the resource <c>AddMeshControlPlane()</c> returns, named as asked; the others are <c>&lt;name&gt;-1</c>,
    /// <c>&lt;name&gt;-2</c>, .... Each has its own data directory, its own intermediate CA signed by the development root
    /// (the root's key stays with the AppHost) and its own health check; all have the same join tokens and admin token.
    /// Workloads get every replica's address. From 1 to <see cref="MaxReplicas"/>.
    /// </summary>
    public int Replicas { get; set; } = 1;

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
