using Microsoft.Extensions.Options;

namespace MeshKit.ControlChannel;

/// <summary>
/// Where the control service's replicas are: the list the control-channel client signs and watches with. By default the
/// configured addresses (<c>Mesh:ControlPlane:Address</c> and <c>:Addresses</c>); the Consul add-on replaces it when
/// <c>Mesh:ControlPlane:ConsulService</c> is set. The list says where to connect, never whom to trust: every replica must
/// prove the control service's SPIFFE ID under the mesh's roots, so a wrong entry costs a failover, not trust.
/// </summary>
internal interface IControlPlaneAddresses
{
    /// <summary>Gets the replicas known now, each with a path ending in <c>/</c>; empty while the source has not answered yet.</summary>
    IReadOnlyList<Uri> Current { get; }

    /// <summary>Describes where the list comes from and what it holds, for messages ("https://a:7443/, https://b:7443/").</summary>
    /// <returns>The description.</returns>
    string Describe();

    /// <summary>Returns the replicas, waiting until at least one is known (the first certificate needs one).</summary>
    /// <param name="cancellationToken">Stops waiting (the startup timeout).</param>
    /// <returns>A list with at least one address.</returns>
    ValueTask<IReadOnlyList<Uri>> WaitAsync(CancellationToken cancellationToken);
}

/// <summary>The configured replicas: <c>Mesh:ControlPlane:Address</c>, then <c>Mesh:ControlPlane:Addresses:&lt;i&gt;</c>.</summary>
internal sealed class ConfiguredControlPlaneAddresses(IOptions<MeshOptions> options) : IControlPlaneAddresses
{
    private readonly IReadOnlyList<Uri> _addresses = options.Value.ControlPlane.ConfiguredAddresses();

    public IReadOnlyList<Uri> Current => _addresses;

    public string Describe() => _addresses.Count == 0 ? "(no address configured)" : string.Join(", ", _addresses);

    public ValueTask<IReadOnlyList<Uri>> WaitAsync(CancellationToken cancellationToken) =>
        _addresses.Count > 0
            ? ValueTask.FromResult(_addresses)
            : ValueTask.FromException<IReadOnlyList<Uri>>(new InvalidOperationException(
                "No control-service address is configured: set Mesh:ControlPlane:Address (or :Addresses:0, ...), or Mesh:ControlPlane:ConsulService with the MeshKit.Discovery.Consul add-on."));
}
