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
        var settings = ReadSettings(builder, configure);
        var tool = MeshControlPlaneTool.Find(
            settings.ToolPath ?? builder.Configuration[MeshControlPlaneTool.ToolPathKey],
            builder.AppHostDirectory,
            Environment.GetEnvironmentVariable("PATH"),
            Environment.GetFolderPath(Environment.SpecialFolder.UserProfile));
        return AddControlPlane(builder, name, settings, (replicaName, port, _) =>
        {
            var executable = builder.AddExecutable(replicaName, tool.Command, tool.WorkingDirectory, [.. tool.Arguments]);
            executable.WithHttpsEndpoint(port: port, name: EndpointName, isProxied: false);
            var endpoint = executable.GetEndpoint(EndpointName);

            // An executable gets no ASPNETCORE_URLS from Aspire (a project does): the control service binds what it reads there.
            executable.WithEnvironment("ASPNETCORE_URLS", ReferenceExpression.Create($"https://127.0.0.1:{endpoint.Property(EndpointProperty.TargetPort)}"));
            return executable;
        }, static (_, path) => path);
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
        var settings = ReadSettings(builder, configure);
        return AddControlPlane(builder, name, settings, (replicaName, port, hostFolder) =>
        {
            var container = builder.AddContainer(replicaName, settings.ContainerImage ?? MeshControlPlaneSettings.DefaultContainerImage, settings.ContainerTag ?? MeshControlPlaneSettings.DefaultContainerTag);
            container.WithHttpsEndpoint(port: port, targetPort: ContainerPort, name: EndpointName);
            if (OperatingSystem.IsLinux() && LinuxUser.Current() is { } user)
            {
                // The image's own user (app, uid 1654) cannot read the AppHost user's 0600 CA key through the bind mount.
                container.WithContainerRuntimeArgs("--user", user);
            }

            // One replica mounts the state folder; each of several mounts its own folder only, so the root's key stays out.
            container.WithBindMount(hostFolder, ContainerStateDirectory);
            return container;
        }, static (hostFolder, path) => ContainerStateDirectory + "/" + Path.GetRelativePath(hostFolder, path).Replace('\\', '/'));
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
        var settings = ReadSettings(builder, configure);
        return AddControlPlane(builder, name, settings, (replicaName, port, _) =>
            builder.AddProject<TProject>(replicaName, options => options.ExcludeLaunchProfile = true)
                .WithHttpsEndpoint(port: port, name: EndpointName, isProxied: false), static (_, path) => path);
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
        var settings = ReadSettings(builder, configure);
        return AddControlPlane(builder, name, settings, (replicaName, port, _) =>
            builder.AddProject(replicaName, projectPath, options => options.ExcludeLaunchProfile = true)
                .WithHttpsEndpoint(port: port, name: EndpointName, isProxied: false), static (_, path) => path);
    }

    /// <summary>
    /// Applies <paramref name="configure"/> to every replica of the control service that <paramref name="mesh"/> belongs
    /// to: the resource <c>AddMeshControlPlane()</c> returned and, with <see cref="MeshControlPlaneSettings.Replicas"/>
    /// above 1, the others (<c>&lt;name&gt;-1</c>, <c>&lt;name&gt;-2</c>, ...). Use it for what every replica must have
    /// alike (central policy settings, a Consul ACL token): a call on the returned builder alone reaches its replica only.
    /// With one replica it is <paramref name="configure"/> on <paramref name="mesh"/>.
    /// </summary>
    /// <typeparam name="T">The form of the control service (project, executable or container).</typeparam>
    /// <param name="mesh">The control service, from <c>AddMeshControlPlane()</c>.</param>
    /// <param name="configure">What to do to each replica's resource builder.</param>
    /// <returns><paramref name="mesh"/>.</returns>
    public static IResourceBuilder<T> WithEveryReplica<T>(this IResourceBuilder<T> mesh, Action<IResourceBuilder<T>> configure)
        where T : IResource
    {
        ArgumentNullException.ThrowIfNull(mesh);
        ArgumentNullException.ThrowIfNull(configure);
        var controlPlane = mesh.Resource.Annotations.OfType<MeshControlPlaneAnnotation>().SingleOrDefault()
            ?? throw new ArgumentException($"Resource '{mesh.Resource.Name}' is not a MeshKit control service; create it with builder.AddMeshControlPlane(\"{mesh.Resource.Name}\").", nameof(mesh));
        foreach (var replica in controlPlane.Replicas)
        {
            configure(ReferenceEquals(replica.Resource, mesh.Resource) ? mesh : mesh.ApplicationBuilder.CreateResourceBuilder((T)replica.Resource));
        }

        return mesh;
    }

    private static MeshControlPlaneSettings ReadSettings(IDistributedApplicationBuilder builder, Action<MeshControlPlaneSettings>? configure)
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

        if (settings.Replicas is < 1 or > MeshControlPlaneSettings.MaxReplicas)
        {
            throw new ArgumentOutOfRangeException(nameof(configure), settings.Replicas, $"{nameof(MeshControlPlaneSettings)}.{nameof(MeshControlPlaneSettings.Replicas)} is {settings.Replicas}; use 1 to {MeshControlPlaneSettings.MaxReplicas}.");
        }

        if (settings.Replicas > 1 && string.IsNullOrWhiteSpace(builder.Configuration[MeshResourceBuilderExtensions.ConsulAddressKey]))
        {
            // Fails closed at build time: replicas without a shared store would each keep their own revocations, registry and
            // policy, and a workload moving between them would see different answers.
            throw new InvalidOperationException(
                $"{nameof(MeshControlPlaneSettings)}.{nameof(MeshControlPlaneSettings.Replicas)} is {settings.Replicas}, and several control-service replicas share their state " +
                $"through Consul, but the AppHost has no '{MeshResourceBuilderExtensions.ConsulAddressKey}' setting. Start the AppHost with " +
                $"--{MeshResourceBuilderExtensions.ConsulAddressKey}=http://127.0.0.1:8500 (or set it in its configuration), or keep {nameof(MeshControlPlaneSettings.Replicas)} at 1.");
        }

        if (settings.Replicas > 1
            && (!Uri.TryCreate(builder.Configuration[MeshResourceBuilderExtensions.ConsulAddressKey], UriKind.Absolute, out var consul) || consul.Scheme is not ("http" or "https")))
        {
            throw new InvalidOperationException($"The AppHost setting '{MeshResourceBuilderExtensions.ConsulAddressKey}' is '{builder.Configuration[MeshResourceBuilderExtensions.ConsulAddressKey]}'; the control-service replicas need the agent's HTTP address, such as http://127.0.0.1:8500.");
        }

        if (settings.Replicas > 1 && settings.Port is { } port && port + settings.Replicas - 1 > 65535)
        {
            throw new ArgumentOutOfRangeException(nameof(configure), port, $"{nameof(MeshControlPlaneSettings.Port)} is {port}; replica i listens on Port + i, and {settings.Replicas} replicas do not fit below 65536.");
        }

        return settings;
    }

    private static string StateDirectory(IDistributedApplicationBuilder builder, MeshControlPlaneSettings settings) =>
        Path.GetFullPath(settings.StateDirectory ?? Path.Combine(builder.AppHostDirectory, ".meshkit"));

    /// <summary>
    /// Adds the control service's replica or replicas through <paramref name="addReplica"/> and gives each what it needs.
    /// One replica (the default) uses the development root itself as its CA and keeps its data in
    /// <c>&lt;state&gt;/control-plane</c>, as it always has. Several share their state through the AppHost's Consul, and each
    /// has a folder of its own, <c>&lt;state&gt;/replicas/&lt;name&gt;/</c>: an intermediate CA the AppHost signed with the
    /// root (<c>ca/</c>), its data directory (<c>data/</c>) holding the replicas' shared admin token.
    /// </summary>
    /// <param name="builder">The AppHost builder.</param>
    /// <param name="name">The name of the first replica's resource; the others are <c>&lt;name&gt;-1</c>, <c>&lt;name&gt;-2</c>, ...</param>
    /// <param name="settings">The validated settings.</param>
    /// <param name="addReplica">Adds one replica's resource with its <c>https</c> endpoint: its name, its fixed port if any, and its folder on the AppHost's machine.</param>
    /// <param name="pathInResource">Maps a path under a replica's folder on the AppHost's machine to the same file as the resource sees it.</param>
    /// <returns>The first replica's resource builder.</returns>
    private static IResourceBuilder<T> AddControlPlane<T>(
        IDistributedApplicationBuilder builder,
        string name,
        MeshControlPlaneSettings settings,
        Func<string, int?, string, IResourceBuilder<T>> addReplica,
        Func<string, string, string> pathInResource)
        where T : IResourceWithEnvironment, IResourceWithEndpoints, IResourceWithArgs
    {
        var state = StateDirectory(builder, settings);
        var now = DateTimeOffset.UtcNow;
        var ca = DevelopmentCertificateAuthority.LoadOrCreate(Path.Combine(state, "ca"), settings.TrustDomain, now);
        var annotation = new MeshControlPlaneAnnotation(settings.TrustDomain, ca, EndpointName, state);
        if (settings.Replicas == 1)
        {
            var single = addReplica(name, settings.Port, state);
            ConfigureReplica(builder, single, settings, annotation);
            single
                .WithEnvironment("ControlPlane__DataDirectory", pathInResource(state, Path.Combine(state, "control-plane")))
                .WithEnvironment("ControlPlane__Ca__CertificatePath", pathInResource(state, ca.CertificatePath))
                .WithEnvironment("ControlPlane__Ca__KeyPath", pathInResource(state, ca.KeyPath));
            return single;
        }

        var consul = builder.Configuration[MeshResourceBuilderExtensions.ConsulAddressKey]!;
        var replicasFolder = Path.Combine(state, ReplicasDirectory);
        var adminToken = ReplicaAdminToken.LoadOrCreate(replicasFolder);
        IResourceBuilder<T>? first = null;
        for (var i = 0; i < settings.Replicas; i++)
        {
            var replicaName = i == 0 ? name : $"{name}-{i}";
            var folder = Path.Combine(replicasFolder, replicaName);
            DevelopmentCertificateAuthority.CreateOwnerOnlyDirectory(folder);
            var intermediate = ReplicaCertificateAuthority.LoadOrCreate(Path.Combine(folder, "ca"), ca, settings.TrustDomain, replicaName, now);
            var data = Path.Combine(folder, "data");
            ReplicaAdminToken.WriteTo(data, adminToken);

            var replica = addReplica(replicaName, settings.Port + i, folder);
            ConfigureReplica(builder, replica, settings, annotation);
            replica
                .WithEnvironment("ControlPlane__DataDirectory", pathInResource(folder, data))
                .WithEnvironment("ControlPlane__Ca__CertificatePath", pathInResource(folder, intermediate.CertificatePath))
                .WithEnvironment("ControlPlane__Ca__KeyPath", pathInResource(folder, intermediate.KeyPath))
                .WithEnvironment("ControlPlane__Ca__TrustBundlePath", pathInResource(folder, intermediate.TrustBundlePath))
                .WithEnvironment("ControlPlane__Consul__Address", consul);
            if (first is null)
            {
                first = replica;
            }
            else
            {
                // The dashboard shows the replicas under the first; nothing else depends on it.
                replica.WithParentRelationship(first.Resource);
            }
        }

        return first!;
    }

    /// <summary>The folder of the state directory that holds each replica's folder when there are several.</summary>
    internal const string ReplicasDirectory = "replicas";

    /// <summary>What every replica of every form gets: the annotation, its settings, the join tokens, a health check.</summary>
    /// <param name="builder">The AppHost builder.</param>
    /// <param name="project">The replica's resource, with its <c>https</c> endpoint already added.</param>
    /// <param name="settings">The validated settings.</param>
    /// <param name="annotation">The annotation every replica of this control service shares.</param>
    private static void ConfigureReplica<T>(
        IDistributedApplicationBuilder builder,
        IResourceBuilder<T> project,
        MeshControlPlaneSettings settings,
        MeshControlPlaneAnnotation annotation)
        where T : IResourceWithEnvironment, IResourceWithEndpoints, IResourceWithArgs
    {
        var endpoint = project.GetEndpoint(EndpointName);
        annotation.AddReplica(new MeshControlPlaneReplica(project.Resource, endpoint));
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
            .WithEnvironment(context =>
            {
                if (settings.CertificateLifetime is { } configured)
                {
                    context.EnvironmentVariables["ControlPlane__CertificateLifetime"] = configured.ToString("c", CultureInfo.InvariantCulture);
                }

                // One join token per meshed resource, generated for this run, granting exactly that resource's service. Every
                // replica has them all: a workload's first certificate may come from any of them.
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
        var healthCheck = new MeshControlPlaneHealthCheck(endpoint, annotation.CertificateAuthority.Certificate);
        builder.Services.AddHealthChecks().Add(new HealthCheckRegistration(
            healthCheckKey,
            _ => healthCheck,
            failureStatus: HealthStatus.Unhealthy,
            tags: null));
        project.WithHealthCheck(healthCheckKey);
    }
}
