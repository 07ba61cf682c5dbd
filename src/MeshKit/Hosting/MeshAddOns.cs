using MeshKit.ControlChannel;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace MeshKit.Hosting;

/// <summary>
/// A configuration section that an add-on package reads rather than MeshKit itself (<c>Mesh:Discovery:Consul</c> is read
/// by MeshKit.Discovery.Consul). The add-on's entry point registers one; <see cref="MeshAddOnStartupCheck"/> refuses to
/// start a host that configures the section of an add-on it never added.
/// </summary>
internal sealed class MeshAddOn
{
    /// <summary>The add-ons MeshKit knows of: their section, their package, and the call that adds them.</summary>
    internal static readonly IReadOnlyList<(string Section, string Package, string Call)> Known =
    [
        ("Mesh:Discovery:Consul", "MeshKit.Discovery.Consul", "builder.AddMeshConsulDiscovery()"),
    ];

    /// <summary>Initializes the mark of an add-on.</summary>
    /// <param name="section">The configuration section the add-on reads, for example <c>Mesh:Discovery:Consul</c>.</param>
    public MeshAddOn(string section) => Section = section;

    /// <summary>Gets the configuration section the add-on reads.</summary>
    public string Section { get; }

    /// <summary>
    /// Marks the add-on of <paramref name="section"/> as added, after checking that <c>AddMesh()</c> came first.
    /// </summary>
    /// <param name="services">The host's services.</param>
    /// <param name="section">The configuration section the add-on reads.</param>
    /// <param name="call">The add-on's entry point as the app writes it, for the error when <c>AddMesh()</c> is missing.</param>
    /// <returns><see langword="false"/> when the add-on was already added (its services are in place).</returns>
    /// <exception cref="InvalidOperationException"><c>AddMesh()</c> has not been called on the builder.</exception>
    public static bool TryAdd(IServiceCollection services, string section, string call)
    {
        var meshAdded = false;
        foreach (var descriptor in services)
        {
            if (descriptor.ServiceType == typeof(MeshAddOn) && descriptor.ImplementationInstance is MeshAddOn added && added.Section == section)
            {
                return false;
            }

            meshAdded |= descriptor.ServiceType == typeof(IHostedService) && descriptor.ImplementationType == typeof(MeshAddOnStartupCheck);
        }

        if (!meshAdded)
        {
            throw new InvalidOperationException($"{call} adds to the mesh that builder.AddMesh() sets up: call builder.AddMesh() first, then {call}.");
        }

        services.AddSingleton(new MeshAddOn(section));
        return true;
    }

    /// <summary>Gets the first key under <paramref name="section"/> that has a value, or <see langword="null"/> when the section sets nothing.</summary>
    /// <param name="configuration">The configuration.</param>
    /// <param name="section">The section path.</param>
    /// <returns>The full key, or <see langword="null"/>.</returns>
    internal static string? FirstSetKey(IConfiguration configuration, string section)
    {
        foreach (var (key, value) in configuration.GetSection(section).AsEnumerable())
        {
            if (!string.IsNullOrWhiteSpace(value))
            {
                return key;
            }
        }

        return null;
    }
}

/// <summary>
/// Stops the host before it starts (before a certificate is asked for) when its configuration sets the section of an
/// add-on the app did not add: <c>Mesh:Discovery:Consul:Address</c> without <c>AddMeshConsulDiscovery()</c> would
/// otherwise mean no discovery in Consul and no registration, without a word.
/// </summary>
internal sealed class MeshAddOnStartupCheck(
    IConfiguration configuration,
    IEnumerable<MeshAddOn> added,
    IOptions<MeshOptions> options,
    IServiceProvider services) : IHostedLifecycleService
{
    /// <summary>The add-on that finds the control service's replicas in Consul.</summary>
    private const string ConsulSection = "Mesh:Discovery:Consul";

    public Task StartingAsync(CancellationToken cancellationToken)
    {
        // Mesh:ControlPlane:ConsulService is MeshKit's own setting, but only the Consul add-on can answer it: without it the
        // workload would have no control-service address at all. Read from the options, so a value set in code counts too.
        if (options.Value.ControlPlane.ConsulService is { Length: > 0 } service
            && services.GetService<IControlPlaneAddresses>() is null or ConfiguredControlPlaneAddresses)
        {
            var consulAdded = added.Any(a => a.Section == ConsulSection);
            throw new InvalidOperationException(consulAdded
                ? $"Mesh:ControlPlane:ConsulService is '{service}', so the control service's replicas are to be found in Consul, but {ConsulSection}:Address "
                    + "is not set, so the Consul add-on is off. Set it to the Consul agent's address, or remove Mesh:ControlPlane:ConsulService and list the "
                    + "replicas in Mesh:ControlPlane:Address (or :Addresses:0, ...)."
                : $"Mesh:ControlPlane:ConsulService is '{service}', so the control service's replicas are to be found in Consul, but this app did not add "
                    + "the MeshKit.Discovery.Consul add-on that reads Consul. Add the package (dotnet add package MeshKit.Discovery.Consul) and call "
                    + $"builder.AddMeshConsulDiscovery() after builder.AddMesh() with {ConsulSection}:Address set, or remove Mesh:ControlPlane:ConsulService "
                    + "and list the replicas in Mesh:ControlPlane:Address (or :Addresses:0, ...).");
        }

        foreach (var (section, package, call) in MeshAddOn.Known)
        {
            if (!added.Any(a => a.Section == section) && MeshAddOn.FirstSetKey(configuration, section) is { } key)
            {
                throw new InvalidOperationException(
                    $"{section} is configured ({key} is set), but this app did not add the {package} add-on that reads it, so the "
                    + $"settings would be ignored. Add the package (dotnet add package {package}) and call {call} after "
                    + $"builder.AddMesh(), or remove the {section} settings.");
            }
        }

        return Task.CompletedTask;
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
