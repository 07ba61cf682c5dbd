namespace MeshKit;

/// <summary>MeshKit's readiness endpoint.</summary>
public sealed class MeshHealthOptions
{
    /// <summary>
    /// Gets or sets the path of MeshKit's readiness endpoint (checks tagged <c>ready</c>: identity, policy, discovery,
    /// drain), served on every endpoint. Default <c>/mesh/ready</c>; empty maps none.
    /// </summary>
    public string ReadinessPath { get; set; } = "/mesh/ready";
}
