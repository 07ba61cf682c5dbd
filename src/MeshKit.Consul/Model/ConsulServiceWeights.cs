using System.Text.Json.Serialization;

namespace MeshKit.Consul;

/// <summary>The weights Consul gives an instance in DNS SRV answers, by check state.</summary>
public sealed class ConsulServiceWeights
{
    /// <summary>Gets the weight while every check passes. Consul's default is 1.</summary>
    public int Passing { get; init; } = 1;

    /// <summary>Gets the weight while a check is warning. Consul's default is 1.</summary>
    public int Warning { get; init; } = 1;
}
