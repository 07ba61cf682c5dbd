using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using MeshKit.Testing;
using MeshKit.Tests.Identity;

namespace MeshKit.Tests.Chaos;

/// <summary>A mesh upstream (tests/Chaos/Chaos.Upstream) running as a real process, so a test can kill it like a crash.</summary>
public sealed class UpstreamProcess : IDisposable
{
    private readonly Process _process;

    private UpstreamProcess(Process process, int meshPort, int publicPort)
    {
        _process = process;
        MeshPort = meshPort;
        PublicPort = publicPort;
    }

    public int MeshPort { get; }

    public int PublicPort { get; }

    public static async Task<UpstreamProcess> StartAsync(ControlPlaneHost controlPlane, string name, string service = "orders")
    {
        var meshPort = FreePort();
        var publicPort = FreePort();
        var info = new ProcessStartInfo("dotnet", [AssemblyPath(), "--urls", $"http://127.0.0.1:{publicPort}"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var env = info.Environment;
        env["CHAOS_NAME"] = name;
        env["Mesh__Service__Name"] = service;
        env["Mesh__Service__InstanceId"] = name;
        env["Mesh__TrustDomain"] = ControlPlaneHost.TrustDomain;
        env["Mesh__ControlPlane__Address"] = controlPlane.BaseAddress.ToString();
        env["Mesh__ControlPlane__TrustBundlePath"] = controlPlane.TrustBundlePath;
        env["Mesh__ControlPlane__JoinToken"] = MeshTestBed.Token;
        env["Mesh__ControlPlane__WatchWait"] = "00:00:05";

        // State beside the control service's data (deleted with it), never in the real per-user folder.
        env["Mesh__ControlPlane__StateDirectory"] = Path.Combine(controlPlane.DataDirectory, "workloads", name);
        env["Mesh__Endpoint__Port"] = meshPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        env["Mesh__Endpoint__Address"] = "127.0.0.1";
        env["Mesh__Telemetry__ConfigureOpenTelemetry"] = "false";
        env["Logging__LogLevel__Default"] = "Warning";

        var process = Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start.");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var upstream = new UpstreamProcess(process, meshPort, publicPort);
        using var probe = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{publicPort}/"), Timeout = TimeSpan.FromSeconds(2) };
        try
        {
            await Eventually.WaitAsync(async () =>
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"The upstream process {name} exited with {process.ExitCode}.");
                }

                try
                {
                    using var response = await probe.GetAsync("mesh/ready");
                    return response.IsSuccessStatusCode;
                }
                catch (HttpRequestException)
                {
                    return false;
                }
            }, TimeSpan.FromSeconds(30), $"upstream process {name} to be ready", TimeSpan.FromMilliseconds(100));
        }
        catch
        {
            upstream.Dispose();
            throw;
        }

        return upstream;
    }

    /// <summary>Kills the process at once, like a crash: no drain, no deregistration, connections reset.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string AssemblyPath()
    {
        // The upstream project is built with the tests (a ProjectReference that is not referenced as an assembly).
        var here = new DirectoryInfo(AppContext.BaseDirectory);
        var configuration = here.Parent!.Name;
        for (var dir = here; dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "Chaos", "Chaos.Upstream", "bin", configuration, "net10.0", "Chaos.Upstream.dll");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException("Chaos.Upstream.dll was not built next to the tests; build tests/Chaos/Chaos.Upstream.");
    }
}
