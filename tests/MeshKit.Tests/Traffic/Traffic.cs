using System.Collections.Concurrent;
using MeshKit.Testing;
using MeshKit.Tests.Identity;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Tests.Traffic;

/// <summary>An upstream instance for traffic tests: a real mesh app that counts what it serves.</summary>
public sealed class Upstream : IAsyncDisposable
{
    private Upstream(MeshAppHost host, string version)
    {
        Host = host;
        Version = version;
    }

    public MeshAppHost Host { get; }

    public string Version { get; }

    public int Served => _served;

    public ConcurrentQueue<IHeaderDictionary> Requests { get; } = new();

    private int _served;

    /// <summary>Starts an instance of <paramref name="service"/> whose every route answers through <paramref name="answer"/>.</summary>
    public static async Task<Upstream> StartAsync(MeshTestBed bed, string service, string version, Func<HttpContext, Upstream, Task>? answer = null)
    {
        Upstream? self = null;
        var host = await MeshAppHost.StartAsync(bed.ControlPlane, service, MeshTestBed.Token,
            settings: new Dictionary<string, string?> { ["Mesh:Service:Version"] = version },
            map: app => app.Map("/{**path}", async (HttpContext http) =>
            {
                var me = self!;
                Interlocked.Increment(ref me._served);
                if (me.Requests.Count < 10_000)
                {
                    me.Requests.Enqueue(http.Request.Headers);
                }

                if (answer is not null)
                {
                    await answer(http, me);
                }
                else
                {
                    await http.Response.WriteAsync(me.Version);
                }
            }));
        self = new Upstream(host, version);
        return self;
    }

    /// <summary>
    /// Starts an instance of <paramref name="service"/> serving the gRPC service <typeparamref name="TService"/> (Grpc.AspNetCore)
    /// on its mesh endpoint; <paramref name="configureServices"/> registers what the service needs. <see cref="Served"/> stays 0:
    /// the gRPC service counts its own calls. <paramref name="settings"/> are further settings of the instance (<c>Mesh:Authorization</c>, say).
    /// </summary>
    public static async Task<Upstream> StartGrpcAsync<TService>(
        MeshTestBed bed, string service, string version, Action<IServiceCollection>? configureServices = null, IDictionary<string, string?>? settings = null)
        where TService : class
    {
        var all = new Dictionary<string, string?>(settings ?? new Dictionary<string, string?>()) { ["Mesh:Service:Version"] = version };
        var host = await MeshAppHost.StartAsync(bed.ControlPlane, service, MeshTestBed.Token,
            settings: all,
            configureServices: services =>
            {
                services.AddGrpc();
                configureServices?.Invoke(services);
            },
            map: app => app.MapGrpcService<TService>());
        return new Upstream(host, version);
    }

    public ValueTask DisposeAsync() => Host.DisposeAsync();
}

/// <summary>Builds callers pointed at upstreams through the static discovery section.</summary>
public static class Caller
{
    public static async Task<MeshAppHost> StartAsync(
        MeshTestBed bed,
        string destination,
        IEnumerable<Upstream> upstreams,
        IDictionary<string, string?>? policy = null,
        Action<IServiceCollection>? configureServices = null,
        string service = "frontend")
    {
        var settings = new Dictionary<string, string?>();
        var index = 0;
        foreach (var upstream in upstreams)
        {
            foreach (var (key, value) in upstream.Host.AsStaticEndpoint(destination, index++, upstream.Version))
            {
                settings[key] = value;
            }
        }

        foreach (var (key, value) in policy ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        return await MeshAppHost.StartAsync(bed.ControlPlane, service, MeshTestBed.Token, settings: settings, meshEndpoint: false,
            configureServices: services =>
            {
                services.AddMeshClient(destination);
                configureServices?.Invoke(services);
            });
    }

    public static HttpClient Client(this MeshAppHost host, string destination) =>
        host.Services.GetRequiredService<IHttpClientFactory>().CreateClient(destination);

    /// <summary>Sends <paramref name="count"/> requests from <paramref name="workers"/> concurrent workers; returns (succeeded, failed).</summary>
    public static async Task<(int Succeeded, int Failed, ConcurrentQueue<string> Errors)> LoadAsync(
        HttpClient client, int count, int workers, Func<HttpRequestMessage>? request = null, TimeSpan? limit = null)
    {
        var remaining = count;
        var succeeded = 0;
        var failed = 0;
        var errors = new ConcurrentQueue<string>();
        using var deadline = new CancellationTokenSource(limit ?? TimeSpan.FromSeconds(30));
        var tasks = Enumerable.Range(0, workers).Select(async _ =>
        {
            while (Interlocked.Decrement(ref remaining) >= 0 && !deadline.IsCancellationRequested)
            {
                try
                {
                    using var message = request?.Invoke() ?? new HttpRequestMessage(HttpMethod.Get, "/");
                    using var response = await client.SendAsync(message, deadline.Token);
                    if (response.IsSuccessStatusCode)
                    {
                        Interlocked.Increment(ref succeeded);
                    }
                    else
                    {
                        Interlocked.Increment(ref failed);
                        if (errors.Count < 20)
                        {
                            errors.Enqueue($"{(int)response.StatusCode}");
                        }
                    }
                }
                catch (Exception ex) when (!deadline.IsCancellationRequested)
                {
                    Interlocked.Increment(ref failed);
                    if (errors.Count < 20)
                    {
                        errors.Enqueue(ex.GetBaseException().Message);
                    }
                }
            }
        });
        await Task.WhenAll(tasks);
        return (succeeded, failed, errors);
    }
}
