using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace MeshKit.Server;

/// <summary>Where this workload's mesh endpoint listens, once the server has started.</summary>
internal sealed class MeshEndpointInfo
{
    private ListenOptions? _listen;

    /// <summary>Gets whether this workload has a mesh endpoint (<c>Mesh:Endpoint:Port</c> is set).</summary>
    public bool IsConfigured => _listen is not null;

    /// <summary>Gets the bound address and port (the actual port when 0 was configured), once the server has started.</summary>
    public IPEndPoint? BoundEndPoint => _listen?.IPEndPoint;

    /// <summary>Gets the port other workloads connect to, once the server has started.</summary>
    public int? Port => BoundEndPoint?.Port;

    internal void Set(ListenOptions listen) => _listen = listen;
}
