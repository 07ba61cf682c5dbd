using System.Net;
using MeshKit.Discovery;
using MeshKit.Identity;
using MeshKit.Testing;
using MeshKit.Transport;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Time.Testing;

namespace MeshKit.Tests.CallPaths;

/// <summary>
/// A mesh client's whole call path with the wire replaced: a real <c>AddMesh()</c> container (not started), the mesh's
/// clock a <see cref="FakeTimeProvider"/>, its random source the test's, static discovery for <c>orders</c>, and every
/// endpoint answered by the test. Behaviour that is not on the wire (timeouts, retries, routing, ejection) runs in
/// virtual time.
/// </summary>
internal sealed class CallPathBed : IDisposable
{
    private readonly IHost _host;
    private readonly TempDirectory _directory = new("callpath");
    private readonly System.Security.Cryptography.X509Certificates.X509Certificate2 _ca = TestCertificates.CreateRootCa("Call path bed CA");

    /// <param name="answer">Answers a request sent to an endpoint (its key, for example <c>10.0.0.1:8443</c>).</param>
    /// <param name="settings">Policy and other settings.</param>
    /// <param name="endpoints">The endpoints of <c>orders</c>, as (address, version).</param>
    /// <param name="random">The mesh's random source; <see cref="Random.Shared"/> by default.</param>
    /// <param name="clock">The mesh's clock when not <see cref="Time"/> (for example the system's).</param>
    public CallPathBed(
        Func<string, HttpRequestMessage, CancellationToken, Task<HttpResponseMessage>> answer,
        IDictionary<string, string?>? settings = null,
        (string Address, string Version)[]? endpoints = null,
        Random? random = null,
        TimeProvider? clock = null)
    {
        var bundle = Path.Combine(_directory.Path, "bundle.pem");
        File.WriteAllText(bundle, TrustBundle.Create([_ca]).Pem);
        var all = new Dictionary<string, string?>
        {
            ["Mesh:Service:Name"] = "frontend",
            ["Mesh:TrustDomain"] = "mesh.local",
            ["Mesh:ControlPlane:Address"] = "https://127.0.0.1:1",
            ["Mesh:ControlPlane:TrustBundlePath"] = bundle,
            ["Mesh:ControlPlane:JoinToken"] = "not-used-by-this-bed",
            ["Mesh:ControlPlane:StateDirectory"] = string.Empty,
        };
        var index = 0;
        foreach (var (address, version) in endpoints ?? [("10.0.0.1:8443", "v1"), ("10.0.0.2:8443", "v1")])
        {
            all[$"Mesh:Discovery:Static:orders:{index}:Address"] = address;
            all[$"Mesh:Discovery:Static:orders:{index}:Version"] = version;
            index++;
        }

        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            all[key] = value;
        }

        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(all);
        builder.Services.AddSingleton(clock ?? Time);
        builder.Services.AddSingleton(new MeshRandom(random ?? Random.Shared));
        builder.AddMesh();
        builder.Services.AddMeshClient("orders");
        _host = builder.Build();

        Services.GetRequiredService<MeshConnectionPools>().HandlerOverride = endpoint => new Terminal(endpoint.Key, answer);
        var svid = TestCertificates.CreateSvid(_ca, "spiffe://mesh.local/ns/default/svc/frontend");
        Services.GetRequiredService<WorkloadIdentitySource>().Set(
            new WorkloadIdentity(SpiffeId.Parse("spiffe://mesh.local/ns/default/svc/frontend"), svid, [], TrustBundle.Create([_ca]), Time.GetUtcNow()));
        Client = Services.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
    }

    /// <summary>Gets the mesh's clock.</summary>
    public FakeTimeProvider Time { get; } = new(DateTimeOffset.UtcNow);

    public IServiceProvider Services => _host.Services;

    /// <summary>Gets the mesh client for <c>orders</c>.</summary>
    public HttpClient Client { get; }

    public static Task<HttpResponseMessage> Answer(HttpStatusCode status) => Task.FromResult(new HttpResponseMessage(status));

    public void Dispose()
    {
        Client.Dispose();
        _host.Dispose();
        _ca.Dispose();
        _directory.Dispose();
    }

    /// <summary>Stands in for the sockets and TLS of one endpoint.</summary>
    private sealed class Terminal(string endpoint, Func<string, HttpRequestMessage, CancellationToken, Task<HttpResponseMessage>> answer) : HttpMessageHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await answer(endpoint, request, cancellationToken).ConfigureAwait(false);
            response.RequestMessage ??= request;
            return response;
        }
    }
}
