namespace MeshKit.ControlPlane;

/// <summary>A join token: a secret that lets a workload obtain its first certificate for the services it grants.</summary>
public sealed class JoinTokenOptions
{
    /// <summary>Gets or sets the secret. At least 16 characters; compared in constant time and never logged.</summary>
    public string? Token { get; set; }

    /// <summary>
    /// Gets the services this token grants, as <c>&lt;namespace&gt;/&lt;service&gt;</c>; a bare <c>&lt;service&gt;</c>
    /// means namespace <c>default</c>.
    /// </summary>
    public List<string> Services { get; } = [];
}
