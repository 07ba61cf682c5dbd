namespace MeshKit.Identity;

/// <summary>
/// Thrown when the workload has no valid identity: before the first certificate, after it expired without renewal,
/// or after the control service revoked it. Mesh calls fail closed with this error rather than go out unauthenticated.
/// </summary>
public sealed class MeshIdentityException : Exception
{
    /// <summary>Initializes a new instance.</summary>
    public MeshIdentityException()
    {
    }

    /// <summary>Initializes a new instance with a message.</summary>
    /// <param name="message">What is wrong and what to do.</param>
    public MeshIdentityException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance with a message and the cause.</summary>
    /// <param name="message">What is wrong and what to do.</param>
    /// <param name="innerException">The cause.</param>
    public MeshIdentityException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
