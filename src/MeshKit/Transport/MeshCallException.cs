using MeshKit.Discovery;

namespace MeshKit.Transport;

/// <summary>
/// A mesh call that could not be made, with a machine-readable reason: no endpoints for the destination, no valid
/// workload identity. Derives from <see cref="HttpRequestException"/> so callers that handle transport errors handle it.
/// </summary>
public sealed class MeshCallException : HttpRequestException
{
    /// <summary>Initializes a new instance.</summary>
    /// <param name="reason">A machine-readable reason: one of <see cref="MeshCallReasons"/>.</param>
    /// <param name="message">What happened and what to check.</param>
    /// <param name="inner">The cause, if any.</param>
    public MeshCallException(string reason, string message, Exception? inner = null)
        : base(message, inner)
    {
        Reason = reason;
    }

    /// <summary>Gets the machine-readable reason: one of <see cref="MeshCallReasons"/> (docs/troubleshooting.md explains each).</summary>
    public string Reason { get; }
}
