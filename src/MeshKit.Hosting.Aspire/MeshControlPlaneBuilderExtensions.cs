using System.Globalization;
using Aspire.Hosting.ApplicationModel;
using MeshKit;
using MeshKit.Hosting.Aspire;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Aspire.Hosting;

/// <summary>Adds the MeshKit control service to an Aspire AppHost: <c>builder.AddMeshControlPlane&lt;Projects.MeshKit_ControlPlane&gt;("mesh")</c>.</summary>
public static class MeshControlPlaneBuilderExtensions
{
    /// <summary>The name of the control service's HTTPS endpoint.</summary>
    public const string EndpointName = "https";

    /// <summary>
    /// Adds the MeshKit control service as a project resource, with a development root CA that the AppHost creates once
    /// and keeps under <see cref="MeshControlPlaneSettings.StateDirectory"/> (default <c>.meshkit/</c> next to the
    /// AppHost). Join projects to the mesh with
    /// <see cref="MeshResourceBuilderExtensions.WithMesh(IResourceBuilder{ProjectResource}, IResourceBuilder{ProjectResource}, string?, string?, string?)"/>.
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
        var project = builder.AddProject<TProject>(name, options => options.ExcludeLaunchProfile = true);
        return ConfigureControlPlane(builder, project, configure);
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
        var project = builder.AddProject(name, projectPath, options => options.ExcludeLaunchProfile = true);
        return ConfigureControlPlane(builder, project, configure);
    }

    private static IResourceBuilder<ProjectResource> ConfigureControlPlane(
        IDistributedApplicationBuilder builder,
        IResourceBuilder<ProjectResource> project,
        Action<MeshControlPlaneSettings>? configure)
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

        var state = Path.GetFullPath(settings.StateDirectory ?? Path.Combine(builder.AppHostDirectory, ".meshkit"));
        var ca = DevelopmentCertificateAuthority.LoadOrCreate(Path.Combine(state, "ca"), settings.TrustDomain, DateTimeOffset.UtcNow);
        var annotation = new MeshControlPlaneAnnotation(settings.TrustDomain, ca, EndpointName, state);

        project
            .WithAnnotation(annotation)
            .WithHttpsEndpoint(port: settings.Port, name: EndpointName, isProxied: false)
            .WithUrlForEndpoint(EndpointName, url => url.DisplayText = $"control service TLS :{url.Endpoint?.Port}");

        // The control service serves its own certificate (issued by the mesh CA), so Aspire's developer certificate stays
        // out. The API is marked for evaluation in Aspire 13.6; this is its only use.
#pragma warning disable ASPIRECERTIFICATES001
        project.WithoutHttpsCertificate();
#pragma warning restore ASPIRECERTIFICATES001
        project
            .WithIconName("ShieldLock")
            .WithEnvironment("ControlPlane__TrustDomain", settings.TrustDomain)
            .WithEnvironment("ControlPlane__DataDirectory", Path.Combine(state, "control-plane"))
            .WithEnvironment("ControlPlane__Ca__CertificatePath", ca.CertificatePath)
            .WithEnvironment("ControlPlane__Ca__KeyPath", ca.KeyPath)
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
