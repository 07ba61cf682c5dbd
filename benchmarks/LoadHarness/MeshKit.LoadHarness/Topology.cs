using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace MeshKit.LoadHarness;

/// <summary>
/// One topology, started: every process it consists of (their CPU is summed, their peak RSS compared) and the caller's
/// address that wrk drives. Each topology has processes of its own, so nothing is shared between them. Both apps answer
/// <c>GET /_bench/allocated</c> on plain HTTP (the caller on wrk's port, the upstream on its plain or public port).
/// </summary>
internal sealed class Topology : IDisposable
{
    private readonly List<ManagedProcess> _processes = [];

    private Topology(string name) => Name = name;

    public string Name { get; }

    public Uri CallerAddress { get; private set; } = null!;

    /// <summary>Gets the caller's allocated-bytes address.</summary>
    public Uri CallerAllocatedAddress { get; private set; } = null!;

    /// <summary>Gets the upstream's allocated-bytes address (plain HTTP: its data port, or its admin or public port).</summary>
    public Uri UpstreamAllocatedAddress { get; private set; } = null!;

    /// <summary>Gets when the caller process was launched (a <see cref="Stopwatch"/> timestamp); the warm-up curve counts from it.</summary>
    public long CallerLaunchedAt { get; private set; }

    /// <summary>Gets when the caller first answered <c>GET /</c> end to end (a <see cref="Stopwatch"/> timestamp).</summary>
    public long CallerReadyAt { get; private set; }

    public IReadOnlyList<ManagedProcess> Processes => _processes;

    public static async Task<Topology> StartAsync(string name, HarnessOptions options, BenchCertificates certificates, CancellationToken cancellationToken)
    {
        var topology = new Topology(name);
        try
        {
            await topology.StartCoreAsync(options, certificates, cancellationToken);
            return topology;
        }
        catch
        {
            topology.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        // Callers first, so that nothing they still send fails noisily upstream.
        for (var i = _processes.Count - 1; i >= 0; i--)
        {
            _processes[i].Dispose();
        }
    }

    private async Task StartCoreAsync(HarnessOptions o, BenchCertificates certs, CancellationToken cancellationToken)
    {
        var logs = Path.Combine(o.Work, "logs");
        var callerPort = FreePort();
        CallerAddress = new Uri($"http://127.0.0.1:{callerPort}/");
        CallerAllocatedAddress = new Uri(CallerAddress, "/_bench/allocated");
        var admin = FreePort();
        void AllocatedAt(int port) => UpstreamAllocatedAddress = new Uri($"http://127.0.0.1:{port}/_bench/allocated");
        string[] tlsFiles(string who) =>
            [$"--Bench:CertPath={(who == "server" ? certs.ServerCertPath : certs.ClientCertPath)}", $"--Bench:KeyPath={(who == "server" ? certs.ServerKeyPath : certs.ClientKeyPath)}", $"--Bench:CaPath={certs.CaPath}"];

        switch (Name)
        {
            case "direct-http":
            {
                var upstream = FreePort();
                AllocatedAt(upstream);
                await StartAppAsync("upstream", o, ["--Bench:Mode=plain", $"--Bench:Port={upstream}"], new Uri($"http://127.0.0.1:{upstream}/healthz"), cancellationToken);
                await StartAppAsync("caller", o, ["--Bench:Topology=direct-http", $"--Bench:Port={callerPort}", $"--Bench:Upstream=http://127.0.0.1:{upstream}"], CallerAddress, cancellationToken);
                break;
            }

            case "direct-mtls" or "direct-mtls-h2" or "direct-mtls-h2-otel" or "direct-grpc-mtls":
            {
                var upstream = FreePort();
                AllocatedAt(admin);
                var otel = Name == "direct-mtls-h2-otel" ? "--Bench:OpenTelemetry=true" : "--Bench:OpenTelemetry=false";
                var grpc = Name == "direct-grpc-mtls" ? "--Bench:Grpc=true" : "--Bench:Grpc=false";
                await StartAppAsync("upstream", o, ["--Bench:Mode=mtls", $"--Bench:Port={upstream}", $"--Bench:AdminPort={admin}", otel, grpc, .. tlsFiles("server")], null, cancellationToken);
                await WaitForPortAsync(upstream, cancellationToken);
                await StartAppAsync("caller", o, [$"--Bench:Topology={Name}", $"--Bench:Port={callerPort}", $"--Bench:Upstream=https://127.0.0.1:{upstream}", .. tlsFiles("client")], CallerAddress, cancellationToken);
                break;
            }

            case "sidecar-haproxy":
            {
                var upstream = FreePort();
                var inbound = FreePort();
                var outbound = FreePort();
                AllocatedAt(upstream);
                await StartAppAsync("upstream", o, ["--Bench:Mode=plain", $"--Bench:Port={upstream}"], new Uri($"http://127.0.0.1:{upstream}/healthz"), cancellationToken);
                var inboundConfig = Haproxy.WriteInbound(o.Work, inbound, upstream, certs);
                _processes.Add(ManagedProcess.Start($"{Name}.haproxy-inbound", "haproxy", ["-db", "-f", inboundConfig], logs));
                await WaitForPortAsync(inbound, cancellationToken);
                var outboundConfig = Haproxy.WriteOutbound(o.Work, outbound, inbound, certs);
                _processes.Add(ManagedProcess.Start($"{Name}.haproxy-outbound", "haproxy", ["-db", "-f", outboundConfig], logs));
                await WaitForPortAsync(outbound, cancellationToken);
                await StartAppAsync("caller", o, ["--Bench:Topology=sidecar-haproxy", $"--Bench:Port={callerPort}", $"--Bench:Upstream=http://127.0.0.1:{outbound}"], CallerAddress, cancellationToken);
                break;
            }

            case "meshkit" or "meshkit-notrace" or "meshkit-grpc":
            {
                var control = await ControlService.StartAsync($"{Name}.control-service", o, services: ["caller", "upstream"], cancellationToken);
                _processes.Add(control.Process);
                var mesh = FreePort();
                string[] meshSettings =
                [
                    $"--Mesh:ControlPlane:Address={control.Address}",
                    $"--Mesh:ControlPlane:TrustBundlePath={control.TrustBundlePath}",
                    $"--Mesh:ControlPlane:JoinToken={control.JoinToken}",
                    // meshkit-grpc is measured against direct-grpc-mtls, which has no tracing: like for like, as meshkit-notrace.
                    .. Name is "meshkit-notrace" or "meshkit-grpc" ? (string[])["--Mesh:Telemetry:ConfigureOpenTelemetry=false"] : [],
                ];
                // Each workload's saved trust bundle lives with the run's control-service data, not in the user's profile.
                string StateOf(string role) => $"--Mesh:ControlPlane:StateDirectory={Path.Combine(control.DataDirectory, "workloads", role)}";
                AllocatedAt(admin);
                await StartAppAsync("upstream", o, ["--Bench:Mode=mesh", $"--Bench:AdminPort={admin}", Name == "meshkit-grpc" ? "--Bench:Grpc=true" : "--Bench:Grpc=false", "--Mesh:Service:Name=upstream", $"--Mesh:Endpoint:Port={mesh}", "--Mesh:Endpoint:Address=127.0.0.1", StateOf("upstream"), .. meshSettings], null, cancellationToken);
                await WaitForPortAsync(mesh, cancellationToken);
                await StartAppAsync("caller", o, [$"--Bench:Topology={Name}", $"--Bench:Port={callerPort}", "--Mesh:Service:Name=caller", $"--Mesh:Discovery:Static:upstream:0:Address=127.0.0.1:{mesh}", StateOf("caller"), .. meshSettings], CallerAddress, cancellationToken);
                break;
            }

            default:
                throw new ArgumentException($"Unknown topology '{Name}'.");
        }
    }

    private async Task StartAppAsync(string role, HarnessOptions o, string[] arguments, Uri? readiness, CancellationToken cancellationToken)
    {
        var project = role == "caller" ? "MeshKit.LoadHarness.Caller" : "MeshKit.LoadHarness.Upstream";
        var dll = o.App(project);
        var launched = Stopwatch.GetTimestamp();
        var process = ManagedProcess.Start($"{Name}.{role}", "dotnet", [dll, .. arguments], Path.Combine(o.Work, "logs"), Path.GetDirectoryName(dll));
        _processes.Add(process);
        if (readiness is not null)
        {
            await Readiness.WaitForHttpAsync(readiness, process, cancellationToken);
        }

        if (role == "caller")
        {
            CallerLaunchedAt = launched;
            CallerReadyAt = Stopwatch.GetTimestamp();
        }
    }

    private async Task WaitForPortAsync(int port, CancellationToken cancellationToken) =>
        await Readiness.WaitForPortAsync(port, _processes[^1], cancellationToken);

    /// <summary>A free loopback port (the OS picks; the tiny race with other programs is acceptable on a bench machine).</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>Waits for a process to be ready by polling, with a deadline; never a fixed sleep.</summary>
internal static class Readiness
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);

    public static async Task WaitForHttpAsync(Uri address, ManagedProcess process, CancellationToken cancellationToken)
    {
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false, SslOptions = { RemoteCertificateValidationCallback = static (_, _, _, _) => true } }) { Timeout = TimeSpan.FromSeconds(5) };
        await PollAsync($"{process.Name} at {address}", process, async () =>
        {
            using var response = await http.GetAsync(address, cancellationToken);
            return response.IsSuccessStatusCode;
        }, cancellationToken);
    }

    public static async Task WaitForPortAsync(int port, ManagedProcess process, CancellationToken cancellationToken) =>
        await PollAsync($"{process.Name} on port {port.ToString(CultureInfo.InvariantCulture)}", process, async () =>
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, port, cancellationToken);
            return true;
        }, cancellationToken);

    public static async Task PollAsync(string what, ManagedProcess? process, Func<Task<bool>> ready, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + Deadline;
        while (true)
        {
            if (process is { HasExited: true })
            {
                throw new InvalidOperationException($"{process.Name} exited before it was ready; see its log.");
            }

            try
            {
                if (await ready())
                {
                    return;
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or SocketException or TaskCanceledException or IOException)
            {
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{what} was not ready within {Deadline.TotalSeconds} s.");
            }

            await Task.Delay(Interval, cancellationToken);
        }
    }
}
