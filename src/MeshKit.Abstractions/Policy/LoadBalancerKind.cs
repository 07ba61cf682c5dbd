using System.Collections.Frozen;
using System.Collections.Immutable;
using MeshKit.Routing;

namespace MeshKit.Policy;

/// <summary>How an endpoint is chosen among the healthy endpoints of the chosen subset.</summary>
public enum LoadBalancerKind
{
    /// <summary>Power of two choices over peak-EWMA latency times in-flight requests divided by the endpoint's weight, with a failure penalty. The default.</summary>
    PeakEwma,

    /// <summary>Round robin, each endpoint taking turns in proportion to its weight.</summary>
    RoundRobin,
}
