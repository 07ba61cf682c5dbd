namespace MeshKit.Discovery;

/// <summary>
/// Discovery could not say where a destination is: Consul has not answered yet, or it answered that the service has no
/// passing instance. Mesh calls report it as the cause of their <c>no_endpoints</c> error; the message names the
/// destination and the Consul service.
/// </summary>
public sealed class MeshDiscoveryException : Exception
{
    /// <summary>Initializes a new instance.</summary>
    public MeshDiscoveryException()
    {
    }

    /// <summary>Initializes a new instance with a message.</summary>
    /// <param name="message">What discovery found (or could not find) and where it looked.</param>
    public MeshDiscoveryException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance with a message and the cause.</summary>
    /// <param name="message">What discovery found (or could not find) and where it looked.</param>
    /// <param name="innerException">The cause, for example the last Consul error.</param>
    public MeshDiscoveryException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
