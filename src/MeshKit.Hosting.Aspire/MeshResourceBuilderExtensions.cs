using System.Security.Cryptography;
using Aspire.Hosting.ApplicationModel;
using MeshKit;
using MeshKit.Hosting.Aspire;
using Microsoft.Extensions.Configuration;

namespace Aspire.Hosting;

/// <summary>Joins project resources to the mesh: <c>.WithMesh(mesh, service: "orders", version: "v1")</c>.</summary>
public static class MeshResourceBuilderExtensions
{
    /// <summary>The name of the mesh endpoint that <c>WithMesh()</c> adds to a resource.</summary>
    public const string MeshEndpointName = "mesh";

    /// <summary>The AppHost setting that, when set, turns Consul on for every meshed resource (<c>Consul:Address</c>).</summary>
    public const string ConsulAddressKey = "Consul:Address";

    /// <summary>
    /// Joins a project to the mesh whose control service is <paramref name="mesh"/>. The project must call
    /// <c>builder.AddMesh()</c>; it receives, as <c>Mesh__...</c> environment variables:
    /// the control service's address (with several replicas, every replica's: <c>Mesh__ControlPlane__Address</c> and
    /// <c>Mesh__ControlPlane__Addresses__i</c>) and the path of the mesh root that its certificate chains to; a join token generated
    /// for this resource in this run (registered with the control service) that grants exactly this service; the trust
    /// domain; the service name, namespace and version; a mesh endpoint (an Aspire endpoint named <c>mesh</c>, not proxied,
    /// on 127.0.0.1); and MeshKit's static discovery entries for every other meshed resource's mesh endpoint with its
    /// version, resolved when the processes start. The resource waits for the control service (every replica) to be healthy.
    /// When the AppHost's configuration has <c>Consul:Address</c>, it is passed on as <c>Mesh__Discovery__Consul__Address</c>;
    /// the project then needs MeshKit's Consul add-on (the MeshKit.Discovery.Consul package,
    /// <c>builder.AddMeshConsulDiscovery()</c> after <c>builder.AddMesh()</c>), or it stops at start saying so.
    /// </summary>
    /// <param name="builder">The project resource.</param>
    /// <param name="mesh">The control service, from <c>AddMeshControlPlane()</c> (the tool, the container image or the project).</param>
    /// <param name="service">The mesh service name (a DNS label). Default: the resource name.</param>
    /// <param name="version">The version of this resource's endpoint (for example <c>v2</c>), which canary subsets match on.</param>
    /// <param name="namespace">The mesh namespace. Default <c>default</c>.</param>
    /// <returns>The project resource builder.</returns>
    public static IResourceBuilder<ProjectResource> WithMesh(
        this IResourceBuilder<ProjectResource> builder,
        IResourceBuilder<IResourceWithEndpoints> mesh,
        string? service = null,
        string? version = null,
        string? @namespace = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(mesh);
        var controlPlane = mesh.Resource.Annotations.OfType<MeshControlPlaneAnnotation>().SingleOrDefault()
            ?? throw new ArgumentException($"Resource '{mesh.Resource.Name}' is not a MeshKit control service; create it with builder.AddMeshControlPlane<...>(\"{mesh.Resource.Name}\").", nameof(mesh));
        var replicas = controlPlane.Replicas;
        if (replicas.Any(r => ReferenceEquals(r.Resource, builder.Resource)))
        {
            throw new ArgumentException("The control service cannot join its own mesh as a workload.", nameof(builder));
        }

        service ??= builder.Resource.Name;
        @namespace ??= MeshNames.DefaultNamespace;
        if (!MeshNames.IsValidServiceName(service, out var why))
        {
            throw new ArgumentException($"The mesh service name '{service}' {why}.", nameof(service));
        }

        if (!MeshNames.IsValidNamespace(@namespace, out why))
        {
            throw new ArgumentException($"The mesh namespace '{@namespace}' {why}.", nameof(@namespace));
        }

        if (MeshNames.IsReservedNamespace(@namespace))
        {
            throw new ArgumentException($"The namespace '{MeshNames.ReservedNamespace}' is reserved for the control service.", nameof(@namespace));
        }

        if (version is not null && !MeshNames.IsValidVersion(version, out why))
        {
            throw new ArgumentException($"The version '{version}' {why}.", nameof(version));
        }

        // The mesh endpoint is TLS that only mesh clients can open, so it is a plain TCP endpoint to Aspire: it stays out
        // of ASPNETCORE_URLS (MeshKit binds it from Mesh:Endpoint:Port) and out of Aspire's developer certificate.
        builder.WithEndpoint(name: MeshEndpointName, scheme: "tcp", env: "Mesh__Endpoint__Port", isProxied: false)
            .WithUrlForEndpoint(MeshEndpointName, url => url.DisplayText = $"mesh mTLS :{url.Endpoint?.Port}");
        var workload = new MeshWorkload(builder.Resource, service, @namespace, version, NewJoinToken(), builder.GetEndpoint(MeshEndpointName));
        controlPlane.Add(workload);

        var configuration = builder.ApplicationBuilder.Configuration;
        builder.WithEnvironment(context =>
        {
            var env = context.EnvironmentVariables;
            env["Mesh__TrustDomain"] = controlPlane.TrustDomain;
            env["Mesh__Service__Name"] = workload.Service;
            env["Mesh__Service__Namespace"] = workload.Namespace;
            if (workload.Version is not null)
            {
                env["Mesh__Service__Version"] = workload.Version;
            }

            // Every replica's address: the list, not Consul's mesh-control service, because the AppHost knows each endpoint
            // exactly, and a list needs no Consul to find a replica (nor the replicas' registration to have happened). The
            // workload picks its first replica at random among them, so the replicas share the work.
            env["Mesh__ControlPlane__Address"] = ReplicaAddress(replicas[0]);
            for (var i = 1; i < replicas.Count; i++)
            {
                env[$"Mesh__ControlPlane__Addresses__{i - 1}"] = ReplicaAddress(replicas[i]);
            }

            env["Mesh__ControlPlane__TrustBundlePath"] = controlPlane.CertificateAuthority.CertificatePath;
            env["Mesh__ControlPlane__JoinToken"] = workload.JoinToken;

            // The workload's saved trust bundle stays with the rest of the mesh's state, not in the user's profile.
            env["Mesh__ControlPlane__StateDirectory"] = Path.Combine(controlPlane.StateDirectory, "workloads", workload.Resource.Name);
            env["Mesh__Endpoint__Address"] = "127.0.0.1";

            // Static discovery with version metadata for every other meshed resource; Aspire's services__ variables carry
            // no metadata. Ports are endpoint references, so they resolve when the processes start.
            var indexes = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var other in controlPlane.Workloads)
            {
                if (ReferenceEquals(other.Resource, workload.Resource))
                {
                    continue;
                }

                var destination = other.DestinationFor(workload.Namespace);
                indexes.TryGetValue(destination, out var index);
                indexes[destination] = index + 1;
                var key = $"Mesh__Discovery__Static__{destination}__{index}";
                env[$"{key}__Address"] = ReferenceExpression.Create($"127.0.0.1:{other.MeshEndpoint.Property(EndpointProperty.Port)}");
                if (other.Version is not null)
                {
                    env[$"{key}__Version"] = other.Version;
                }
            }

            if (configuration[ConsulAddressKey] is { Length: > 0 } consul)
            {
                env["Mesh__Discovery__Consul__Address"] = consul;
            }
        });

        // Every replica, healthy: a workload may be sent to any of them for its first certificate.
        foreach (var replica in replicas)
        {
            builder.WaitFor(ReferenceEquals(replica.Resource, mesh.Resource) ? mesh : builder.ApplicationBuilder.CreateResourceBuilder(replica.Resource));
        }

        return builder;
    }

    private static ReferenceExpression ReplicaAddress(MeshControlPlaneReplica replica) =>
        ReferenceExpression.Create($"https://127.0.0.1:{replica.Endpoint.Property(EndpointProperty.Port)}");

    private static string NewJoinToken() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24));
}
