namespace MeshKit.EndToEnd.Tests.Shop;

/// <summary>
/// Test classes that start a whole AppHost (control service, services, DCP and dashboard) run alone, after the parallel
/// tests, rather than beside another AppHost: on a 2-core machine two AppHosts starting at once can starve each other.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class AppHostCollection
{
    public const string Name = "Aspire AppHosts";
}
