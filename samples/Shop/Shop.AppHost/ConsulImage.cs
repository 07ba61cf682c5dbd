namespace Shop.AppHost;

/// <summary>The Consul image <c>--Shop:Consul=container</c> runs: HashiCorp's official image, a pinned release.</summary>
public static class ConsulImage
{
    /// <summary>The image, on Docker Hub.</summary>
    public const string Name = "hashicorp/consul";

    /// <summary>The release.</summary>
    public const string Tag = "1.21";
}
