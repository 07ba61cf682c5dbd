using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Net;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;
using Microsoft.Extensions.ServiceDiscovery;

namespace MeshKit.Discovery;

/// <summary>
/// Marks an endpoint provider factory as one of MeshKit's own, used for mesh destinations. Providers an app adds for other
/// clients (configuration, pass-through) never answer for a mesh call.
/// </summary>
public interface IMeshServiceEndpointProviderFactory : IServiceEndpointProviderFactory
{
}
