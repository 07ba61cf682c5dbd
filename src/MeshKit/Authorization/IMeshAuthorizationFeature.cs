using MeshKit.Policy;
using MeshKit.Server;
using MeshKit.Telemetry;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Matching;
using Microsoft.Extensions.Logging;

namespace MeshKit.Authorization;

/// <summary>What mesh authorization decided for a request, for telemetry and diagnostics.</summary>
public interface IMeshAuthorizationFeature
{
    /// <summary>Gets the decision.</summary>
    AuthorizationDecision Decision { get; }
}
