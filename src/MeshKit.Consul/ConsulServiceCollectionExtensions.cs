using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace MeshKit.Consul;

/// <summary>Adds MeshKit's Consul client and last-known service cache to a service collection.</summary>
public static class ConsulServiceCollectionExtensions
{
    /// <summary>
    /// Adds <see cref="ConsulClient"/> and <see cref="ConsulServiceWatcher"/> as singletons, and validates
    /// <see cref="ConsulOptions"/> at start. It does not bind the options: bind them from
    /// <see cref="ConsulOptions.SectionPath"/> (<c>services.AddOptions&lt;ConsulOptions&gt;().BindConfiguration(ConsulOptions.SectionPath)</c>).
    /// Self-registration is not added here, because it needs the instance's address and port; create a
    /// <see cref="ConsulServiceRegistrar"/> once they are known.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <returns>The same collection.</returns>
    public static IServiceCollection AddMeshConsul(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions<ConsulOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ConsulOptions>, ConsulOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(static provider => new ConsulClient(
            provider.GetRequiredService<IOptions<ConsulOptions>>(),
            provider.GetRequiredService<Microsoft.Extensions.Logging.ILoggerFactory>(),
            provider.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<ConsulServiceWatcher>();
        return services;
    }
}
