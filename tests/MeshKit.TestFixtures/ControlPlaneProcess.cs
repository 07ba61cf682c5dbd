using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using MeshKit.Identity;

namespace MeshKit.Testing;

/// <summary>
/// A real control service running as a process of its own (the built <c>MeshKit.ControlPlane.dll</c>), for what an
/// in-process <see cref="ControlPlaneHost"/> cannot do: be killed with SIGKILL (no stop, no drain, sockets reset by the
/// kernel) or stopped with SIGTERM as a service manager stops it. It keeps its port and data folder across restarts.
/// </summary>
public sealed class ControlPlaneProcess : IAsyncDisposable
{
    private const int OutputLines = 200;
    private readonly Dictionary<string, string?> _settings;
    private readonly TempDirectory? _ownedDirectory;
    private readonly ConcurrentQueue<string> _output = new();
    private Process? _process;

    private ControlPlaneProcess(Dictionary<string, string?> settings, string dataDirectory, TempDirectory? owned, int port)
    {
        _settings = settings;
        DataDirectory = dataDirectory;
        _ownedDirectory = owned;
        BaseAddress = new Uri($"https://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}/");
    }

    /// <summary>Gets the base address; the same port across restarts.</summary>
    public Uri BaseAddress { get; }

    /// <summary>Gets the data folder (CA, admin token, revocations), kept across restarts.</summary>
    public string DataDirectory { get; }

    /// <summary>Gets the path of the trust bundle the control service writes to its data folder.</summary>
    public string TrustBundlePath => Path.Combine(DataDirectory, "trust-bundle.pem");

    /// <summary>Gets whether the process runs.</summary>
    public bool IsRunning => _process is { HasExited: false };

    /// <summary>Gets the exit code of the last run that ended (after <see cref="StopAsync"/>, 0 for a clean stop), or null.</summary>
    public int? ExitCode { get; private set; }

    /// <summary>Gets the last lines the process wrote (warnings and errors), for failure messages.</summary>
    public string Output => string.Join(Environment.NewLine, _output);

    /// <summary>Starts a control service process and waits until it answers <c>/healthz</c>.</summary>
    /// <param name="settings">Settings as configuration keys (<c>ControlPlane:...</c>), over <see cref="ControlPlaneHost.DefaultSettings"/>.</param>
    public static async Task<ControlPlaneProcess> StartAsync(IDictionary<string, string?>? settings = null)
    {
        var owned = new TempDirectory("cp-process");
        var all = ControlPlaneHost.DefaultSettings(owned.Path);
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            all[key] = value;
        }

        var control = new ControlPlaneProcess(all, owned.Path, owned, FreePort());
        try
        {
            await control.StartAsync().ConfigureAwait(false);
        }
        catch
        {
            await control.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return control;
    }

    /// <summary>Starts the process again (after <see cref="Kill"/> or <see cref="StopAsync"/>) and waits until it answers <c>/healthz</c>.</summary>
    public async Task StartAsync()
    {
        if (IsRunning)
        {
            return;
        }

        _process?.Dispose();
        var info = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(AssemblyPath());
        info.ArgumentList.Add("--urls");
        info.ArgumentList.Add(BaseAddress.GetLeftPart(UriPartial.Authority));
        foreach (var (key, value) in _settings)
        {
            // Environment variables rather than arguments: no secret on a command line.
            info.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }

        info.Environment["Logging__LogLevel__Default"] = "Warning";
        var process = Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start.");
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;

        await Eventually.WaitAsync(async () =>
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"The control service process at {BaseAddress} exited with {process.ExitCode}:{Environment.NewLine}{Output}");
            }

            if (!File.Exists(TrustBundlePath))
            {
                return false; // written at the first start, before it listens
            }

            try
            {
                using var probe = CreateClient();
                probe.Timeout = TimeSpan.FromSeconds(2);
                using var response = await probe.GetAsync("healthz").ConfigureAwait(false);
                return response.IsSuccessStatusCode;
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or IOException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(30), $"the control service process at {BaseAddress} to answer /healthz", TimeSpan.FromMilliseconds(50)).ConfigureAwait(false);
    }

    /// <summary>Kills the process with SIGKILL, like a crash or an OOM kill: no stop, no drain, no deregistration.</summary>
    public void Kill()
    {
        if (IsRunning)
        {
            _process!.Kill();
            _process.WaitForExit(10_000);
        }
    }

    /// <summary>Stops the process with SIGTERM, as a service manager does, and waits until it has exited.</summary>
    public async Task StopAsync()
    {
        if (!IsRunning)
        {
            return;
        }

        using (var term = Process.Start("kill", ["-TERM", _process!.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await term.WaitForExitAsync().ConfigureAwait(false);
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        try
        {
            await _process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            ExitCode = _process.ExitCode;
        }
        catch (OperationCanceledException)
        {
            Kill();
            throw new TimeoutException($"The control service process at {BaseAddress} did not stop within 20 s of SIGTERM:{Environment.NewLine}{Output}");
        }
    }

    /// <summary>Creates an HttpClient that trusts the control service through its trust bundle file.</summary>
    /// <param name="bearer">A bearer token to send, if any.</param>
    public HttpClient CreateClient(string? bearer = null) =>
        ControlPlaneHost.CreateClient(BaseAddress, TrustBundle.FromPem(File.ReadAllText(TrustBundlePath)), clientCertificate: null, bearer);

    /// <summary>Creates an HttpClient authenticated as admin.</summary>
    public HttpClient CreateAdminClient() => CreateClient(ControlPlaneHost.AdminToken);

    public async ValueTask DisposeAsync()
    {
        Kill();
        _process?.Dispose();
        _process = null;
        await Task.Yield();
        _ownedDirectory?.Dispose();
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        _output.Enqueue(line);
        while (_output.Count > OutputLines && _output.TryDequeue(out _))
        {
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>The control service as built with the tests (every test project references it through these fixtures).</summary>
    private static string AssemblyPath()
    {
        var here = new DirectoryInfo(AppContext.BaseDirectory);
        var configuration = here.Parent!.Name;
        for (var dir = here; dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "src", "MeshKit.ControlPlane", "bin", configuration, "net10.0", "MeshKit.ControlPlane.dll");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException($"MeshKit.ControlPlane.dll ({configuration}) was not found above {here.FullName}; build src/MeshKit.ControlPlane.");
    }
}
