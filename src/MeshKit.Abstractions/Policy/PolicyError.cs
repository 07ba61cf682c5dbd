namespace MeshKit.Policy;

/// <summary>One problem in a policy: the full configuration path it concerns and what would be valid.</summary>
/// <param name="Path">The configuration path, for example <c>Mesh:Policy:Destinations:orders:Routes:0:Split:v2</c>.</param>
/// <param name="Message">What is wrong and what would be valid.</param>
public sealed record PolicyError(string Path, string Message)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Path}: {Message}";
}
