using System.Net;
using MeshKit.Identity;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace MeshKit.Benchmarks.Support;

/// <summary>
/// A real <c>builder.AddMesh()</c> service provider, not started (no control service is contacted): the workload identity
/// is installed directly, discovery is the static section, and the pooled connections' handler is replaced by
/// <see cref="YieldingTerminalHandler"/>, so a call runs the whole call path but no socket or TLS.
/// A "baseline" client has the same factory defaults and terminal but no mesh handlers: the difference is the mesh's.
/// </summary>
public sealed class MeshClientFixture : IDisposable
{
    private readonly IHost _host;
    private readonly string _bundleFile;

    public MeshClientFixture()
    {
        Identity = BenchIdentity.Create();
        _bundleFile = Path.GetTempFileName();
        File.WriteAllText(_bundleFile, Identity.Bundle.Pem);

        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Mesh:Service:Name"] = "caller",
            ["Mesh:ControlPlane:Address"] = "https://127.0.0.1:1",
            ["Mesh:ControlPlane:TrustBundlePath"] = _bundleFile,
            ["Mesh:ControlPlane:JoinToken"] = "not-used-by-the-benchmarks",
            ["Mesh:Discovery:Static:upstream:0:Address"] = "127.0.0.1:5001",
            ["Mesh:Discovery:Static:upstream:0:Version"] = "v1",
        });
        builder.AddMesh();
        builder.Services.AddMeshClient("upstream");
        builder.Services.AddHttpClient("baseline").ConfigurePrimaryHttpMessageHandler(() => new YieldingTerminalHandler());
        _host = builder.Build();

        // The mesh client's whole call path runs; only the pooled connections' sockets and TLS are replaced by the terminal.
        Services.GetRequiredService<MeshKit.Transport.MeshConnectionPools>().HandlerOverride = _ => new YieldingTerminalHandler();
        Services.GetRequiredService<WorkloadIdentitySource>().Set(Identity.CreateWorkloadIdentity("caller"));
        var factory = Services.GetRequiredService<IHttpClientFactory>();
        Mesh = factory.CreateClient("upstream");
        Baseline = factory.CreateClient("baseline");
    }

    public BenchIdentity Identity { get; }

    public IServiceProvider Services => _host.Services;

    /// <summary>Gets the mesh client (<c>AddMeshClient("upstream")</c>), ending in the in-memory terminal.</summary>
    public HttpClient Mesh { get; }

    /// <summary>Gets a plain factory client ending in the same terminal.</summary>
    public HttpClient Baseline { get; }

    public static Uri MeshUri { get; } = new("https://upstream/data");

    public static Uri BaselineUri { get; } = new("http://127.0.0.1:5001/data");

    /// <summary>Makes one call on each client, so discovery has resolved and caches are warm before measuring.</summary>
    public async Task WarmAsync()
    {
        for (var i = 0; i < 2; i++)
        {
            using var a = await Mesh.GetAsync(MeshUri);
            using var b = await Baseline.GetAsync(BaselineUri);
            if (a.StatusCode != HttpStatusCode.OK || b.StatusCode != HttpStatusCode.OK)
            {
                throw new InvalidOperationException("The warm-up call failed.");
            }
        }
    }

    public void Dispose()
    {
        Mesh.Dispose();
        Baseline.Dispose();
        _host.Dispose();
        Identity.Dispose();
        File.Delete(_bundleFile);
    }
}

/// <summary>
/// The in-memory end of the chain: yields once (so the async state machines of every handler above it go through a
/// real suspension and are counted) and answers 200 with no body.
/// </summary>
public sealed class YieldingTerminalHandler : HttpMessageHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        await Task.Yield();
        return new HttpResponseMessage(HttpStatusCode.OK) { RequestMessage = request };
    }
}
