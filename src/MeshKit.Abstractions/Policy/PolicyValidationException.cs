namespace MeshKit.Policy;

/// <summary>Thrown when a policy does not validate; <see cref="Errors"/> lists every problem.</summary>
public sealed class PolicyValidationException : Exception
{
    /// <summary>Initializes a new instance.</summary>
    /// <param name="errors">Every problem found.</param>
    public PolicyValidationException(IReadOnlyList<PolicyError> errors)
        : base("The mesh policy is not valid:" + Environment.NewLine + string.Join(Environment.NewLine, errors.Select(e => "  " + e)))
    {
        Errors = errors;
    }

    /// <summary>Initializes a new instance.</summary>
    public PolicyValidationException()
        : this([])
    {
    }

    /// <summary>Initializes a new instance.</summary>
    /// <param name="message">The message.</param>
    public PolicyValidationException(string message)
        : base(message)
    {
        Errors = [];
    }

    /// <summary>Initializes a new instance.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public PolicyValidationException(string message, Exception innerException)
        : base(message, innerException)
    {
        Errors = [];
    }

    /// <summary>Gets every problem found.</summary>
    public IReadOnlyList<PolicyError> Errors { get; }
}
