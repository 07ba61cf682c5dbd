using System.Globalization;
using Aspire.Hosting.ApplicationModel;
using MeshKit;
using MeshKit.Hosting.Aspire;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Aspire.Hosting;

/// <summary>
/// Adds the MeshKit control service to an Aspire AppHost: <c>builder.AddMeshControlPlane("mesh")</c> runs the installed
/// <c>meshkit-control</c> tool, <c>AddMeshControlPlaneContainer("mesh")</c> its container image, and
/// <c>AddMeshControlPlane&lt;Projects.MeshKit_ControlPlane&gt;("mesh")</c> the project inside the MeshKit repository.
/// </summary>
public static class MeshControlPlaneBuilderExtensions
{
    /// <summary>The name of the control service's HTTPS endpoint.</summary>
    public const string EndpointName = "https";

    /// <summary>The port the control service's container image serves HTTPS on.</summary>
    public const int ContainerPort = 8443;

    /// <summary>The folder of the container where <c>AddMeshControlPlaneContainer()</c> mounts the mesh's state folder.</summary>
    public const string ContainerStateDirectory = "/meshkit";

    /// <summary>
    /// Adds the MeshKit control service as an executable resource that runs the installed <c>meshkit-control</c> tool
    /// (package MeshKit.ControlPlane), with the same development CA, join tokens, endpoint and health check as the other
    /// forms. The tool is found, in this order, at <see cref="MeshControlPlaneSettings.ToolPath"/> (or the AppHost setting
    /// <c>MeshKit:ControlPlane:ToolPath</c>); through a local tool manifest (<c>.config/dotnet-tools.json</c>) in the
    /// AppHost's folder or above that lists MeshKit.ControlPlane (<c>dotnet tool run meshkit-control</c>); on
    /// <c>PATH</c> or in <c>~/.dotnet/tools</c>. When none has it, this throws saying how to install it.
    /// </summary>
    /// <param name="builder">The AppHost builder.</param>
    /// <param name="name">The resource name, for example <c>mesh</c>.</param>
    /// <param name="configure">Changes to the mesh settings (trust domain, state folder, certificate lifetime, port, tool path).</param>
    /// <returns>The control service's resource builder; pass it to <c>WithMesh()</c>.</returns>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026:Do not add multiple public overloads with optional parameters", Justification = "The overloads differ in a required parameter (none, a project type, a project path); no call is ambiguous.")]
    public static IResourceBuilder<ExecutableResource> AddMeshControlPlane(
        this IDistributedApplicationBuilder builder,
        [ResourceName] string name,
        Action<MeshControlPlaneSettings>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var settings = ReadSettings(configure);
        var tool = MeshControlPlaneTool.Find(
            settings.ToolPath ?? builder.Configuration[MeshControlPlaneTool.ToolPathKey],
            builder.AppHostDirectory,
            Environment.GetEnvironmentVariable("PATH"),
            Environment.GetFolderPath(Environment.SpecialFolder.UserProfile));
        var executable = builder.AddExecutable(name, tool.Command, tool.WorkingDirectory, [.. tool.Arguments]);
        executable.WithHttpsEndpoint(port: settings.Port, name: EndpointName, isProxied: false);
        var endpoint = executable.GetEndpoint(EndpointName);

        // An executable gets no ASPNETCORE_URLS from Aspire (a project does): the control service binds what it reads there.
        executable.WithEnvironment("ASPNETCORE_URLS", ReferenceExpression.Create($"https://127.0.0.1:{endpoint.Property(EndpointProperty.TargetPort)}"));
        return ConfigureControlPlane(builder, executable, settings, static path => path);
    }

    /// <summary>
    /// Adds the MeshKit control service as a container resource that runs its image
    /// (<see cref="MeshControlPlaneSettings.ContainerImage"/>, default <c>meshkit/control-plane</c> with this package's
    /// version as its tag), for an AppHost on a machine with a container runtime. The mesh's state folder is mounted at
    /// <c>/meshkit</c> and the container runs as the AppHost's user on Linux, so it can read the development CA's key
    /// (mode 0600). The image serves HTTPS on 8443; Aspire maps it to <see cref="MeshControlPlaneSettings.Port"/> or a
    /// free port on the host.
    /// </summary>
    /// <param name="builder">The AppHost builder.</param>
    /// <param name="name">The resource name, for example <c>mesh</c>.</param>
    /// <param name="configure">Changes to the mesh settings (trust domain, state folder, certificate lifetime, port, image).</param>
    /// <returns>The control service's resource builder; pass it to <c>WithMesh()</c>.</returns>
    public static IResourceBuilder<ContainerResource> AddMeshControlPlaneContainer(
        this IDistributedApplicationBuilder builder,
        [ResourceName] string name,
        Action<MeshControlPlaneSettings>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var settings = ReadSettings(configure);
        var container = builder.AddContainer(name, settings.ContainerImage ?? MeshControlPlaneSettings.DefaultContainerImage, settings.ContainerTag ?? MeshControlPlaneSettings.DefaultContainerTag);
        container.WithHttpsEndpoint(port: settings.Port, targetPort: ContainerPort, name: EndpointName);
        if (OperatingSystem.IsLinux() && LinuxUser.Current() is { } user)
        {
            // The image's own user (app, uid 1654) cannot read the AppHost user's 0600 CA key through the bind mount.
            container.WithContainerRuntimeArgs("--user", user);
        }

        var state = StateDirectory(builder, settings);
        container.WithBindMount(state, ContainerStateDirectory);
        return ConfigureControlPlane(builder, container, settings, path => ContainerStateDirectory + "/" + Path.GetRelativePath(state, path).Replace('\\', '/'));
    }

    /// <summary>
    /// Adds the MeshKit control service as a project resource, with a development root CA that the AppHost creates once
    /// and keeps under <see cref="MeshControlPlaneSettings.StateDirectory"/> (default <c>.meshkit/</c> next to the
    /// AppHost). Join projects to the mesh with
    /// <see cref="MeshResourceBuilderExtensions.WithMesh(IResourceBuilder{ProjectResource}, IResourceBuilder{IResourceWithEndpoints}, string?, string?, string?)"/>.
    /// </summary>
    /// <typeparam name="TProject">The control service's project metadata: <c>Projects.MeshKit_ControlPlane</c> when the AppHost references <c>MeshKit.ControlPlane.csproj</c>.</typeparam>
    /// <param name="builder">The AppHost builder.</param>
    /// <param name="name">The resource name, for example <c>mesh</c>.</param>
    /// <param name="configure">Changes to the mesh settings (trust domain, state folder, certificate lifetime, port).</param>
    /// <returns>The control service's resource builder; pass it to <c>WithMesh()</c>.</returns>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026:Do not add multiple public overloads with optional parameters", Justification = "One overload takes the control service's project type, the other its path; no call is ambiguous.")]
    public static IResourceBuilder<ProjectResource> AddMeshControlPlane<TProject>(
        this IDistributedApplicationBuilder builder,
        [ResourceName] string name,
        Action<MeshControlPlaneSettings>? configure = null)
        where TProject : IProjectMetadata, new()
    {
        ArgumentNullException.ThrowIfNull(builder);
        var settings = ReadSettings(configure);
        var project = builder.AddProject<TProject>(name, options => options.ExcludeLaunchProfile = true);
        project.WithHttpsEndpoint(port: settings.Port, name: EndpointName, isProxied: false);
        return ConfigureControlPlane(builder, project, settings, static path => path);
    }

    /// <summary>
    /// Adds the MeshKit control service from the path of its project file (<c>MeshKit.ControlPlane.csproj</c>), for an
    /// AppHost that cannot reference the project: the control service is an app, not a NuGet package, so point this at a
    /// checkout of the MeshKit repository. Otherwise the same as <see cref="AddMeshControlPlane{TProject}"/>.
    /// </summary>
    /// <param name="builder">The AppHost builder.</param>
    /// <param name="name">The resource name, for example <c>mesh</c>.</param>
    /// <param name="projectPath">The path of <c>MeshKit.ControlPlane.csproj</c>, absolute or relative to the AppHost project's folder.</param>
    /// <param name="configure">Changes to the mesh settings.</param>
    /// <returns>The control service's resource builder; pass it to <c>WithMesh()</c>.</returns>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026:Do not add multiple public overloads with optional parameters", Justification = "One overload takes the control service's project type, the other its path; no call is ambiguous.")]
    public static IResourceBuilder<ProjectResource> AddMeshControlPlane(
        this IDistributedApplicationBuilder builder,
        [ResourceName] string name,
        string projectPath,
        Action<MeshControlPlaneSettings>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(projectPath);
        var settings = ReadSettings(configure);
        var project = builder.AddProject(name, projectPath, options => options.ExcludeLaunchProfile = true);
        project.WithHttpsEndpoint(port: settings.Port, name: EndpointName, isProxied: false);
        return ConfigureControlPlane(builder, project, settings, static path => path);
    }

    private static MeshControlPlaneSettings ReadSettings(Action<MeshControlPlaneSettings>? configure)
    {
        var settings = new MeshControlPlaneSettings();
        configure?.Invoke(settings);
        if (!MeshNames.IsValidTrustDomain(settings.TrustDomain, out var why))
        {
            throw new ArgumentException($"The trust domain '{settings.TrustDomain}' {why} (for example 'mesh.local').", nameof(MeshControlPlaneSettings.TrustDomain));
        }

        if (settings.CertificateLifetime is { } lifetime && lifetime < TimeSpan.FromSeconds(1))
        {
            throw new ArgumentOutOfRangeException(nameof(configure), lifetime, $"{nameof(MeshControlPlaneSettings.CertificateLifetime)} is {lifetime}; use at least 00:00:01.");
        }

        return settings;
    }

    private static string StateDirectory(IDistributedApplicationBuilder builder, MeshControlPlaneSettings settings) =>
        Path.GetFullPath(settings.StateDirectory ?? Path.Combine(builder.AppHostDirectory, ".meshkit"));

    /// <summary>What every form of the control service gets: the development CA, its settings, join tokens, a health check.</summary>
    /// <param name="builder">The AppHost builder.</param>
    /// <param name="project">The resource, with its <c>https</c> endpoint already added.</param>
    /// <param name="settings">The validated settings.</param>
    /// <param name="pathInResource">Maps a path of the AppHost's machine to the same file as the resource sees it.</param>
    private static IResourceBuilder<T> ConfigureControlPlane<T>(
        IDistributedApplicationBuilder builder,
        IResourceBuilder<T> project,
        MeshControlPlaneSettings settings,
        Func<string, string> pathInResource)
        where T : IResourceWithEnvironment, IResourceWithEndpoints, IResourceWithArgs
    {
        var state = StateDirectory(builder, settings);
        var ca = DevelopmentCertificateAuthority.LoadOrCreate(Path.Combine(state, "ca"), settings.TrustDomain, DateTimeOffset.UtcNow);
        var annotation = new MeshControlPlaneAnnotation(settings.TrustDomain, ca, EndpointName, state);

        project
            .WithAnnotation(annotation)
            .WithUrlForEndpoint(EndpointName, url => url.DisplayText = $"control service TLS :{url.Endpoint?.Port}");

        // The control service serves its own certificate (issued by the mesh CA), so Aspire's developer certificate stays
        // out. The API is marked for evaluation in Aspire 13.6; this is its only use.
#pragma warning disable ASPIRECERTIFICATES001
        project.WithoutHttpsCertificate();
#pragma warning restore ASPIRECERTIFICATES001
        project
            .WithIconName("ShieldLock")
            .WithEnvironment("ControlPlane__TrustDomain", settings.TrustDomain)
            .WithEnvironment("ControlPlane__DataDirectory", pathInResource(Path.Combine(state, "control-plane")))
            .WithEnvironment("ControlPlane__Ca__CertificatePath", pathInResource(ca.CertificatePath))
            .WithEnvironment("ControlPlane__Ca__KeyPath", pathInResource(ca.KeyPath))
            .WithEnvironment(context =>
            {
                if (settings.CertificateLifetime is { } configured)
                {
                    context.EnvironmentVariables["ControlPlane__CertificateLifetime"] = configured.ToString("c", CultureInfo.InvariantCulture);
                }

                // One join token per meshed resource, generated for this run, granting exactly that resource's service.
                foreach (var workload in annotation.Workloads)
                {
                    var key = $"ControlPlane__JoinTokens__{workload.Resource.Name}";
                    context.EnvironmentVariables[$"{key}__Token"] = workload.JoinToken;
                    context.EnvironmentVariables[$"{key}__Services__0"] = $"{workload.Namespace}/{workload.Service}";
                }
            });

        // Ready means it answers /healthz over TLS with a certificate that chains to the mesh root, so WaitFor(mesh) holds
        // workloads back until they can get their first certificate.
        var healthCheckKey = $"{project.Resource.Name}-meshkit-control-plane";
        var endpoint = project.GetEndpoint(EndpointName);
        var healthCheck = new MeshControlPlaneHealthCheck(endpoint, ca.Certificate);
        builder.Services.AddHealthChecks().Add(new HealthCheckRegistration(
            healthCheckKey,
            _ => healthCheck,
            failureStatus: HealthStatus.Unhealthy,
            tags: null));
        project.WithHealthCheck(healthCheckKey);
        return project;
    }
}
