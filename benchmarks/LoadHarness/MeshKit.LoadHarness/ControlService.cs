using System.Security.Cryptography;

namespace MeshKit.LoadHarness;

/// <summary>A MeshKit control service process (src/MeshKit.ControlPlane, as built), with a fresh data folder and join token.</summary>
internal sealed class ControlService
{
    private ControlService(ManagedProcess process, Uri address, string dataDirectory, string joinToken, string adminToken)
    {
        Process = process;
        Address = address;
        DataDirectory = dataDirectory;
        JoinToken = joinToken;
        AdminToken = adminToken;
    }

    public ManagedProcess Process { get; }

    public Uri Address { get; }

    public string DataDirectory { get; }

    public string TrustBundlePath => Path.Combine(DataDirectory, "trust-bundle.pem");

    public string JoinToken { get; }

    public string AdminToken { get; }

    public static async Task<ControlService> StartAsync(string name, HarnessOptions o, IReadOnlyList<string> services, CancellationToken cancellationToken, params string[] extra)
    {
        var port = Topology.FreePort();
        var address = new Uri($"https://127.0.0.1:{port}/");
        var data = Path.Combine(o.Work, name + ".data");
        Directory.CreateDirectory(data);
        var joinToken = "bench-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
        var adminToken = "admin-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
        List<string> arguments =
        [
            o.App("MeshKit.ControlPlane"),
            "--urls", $"https://127.0.0.1:{port}",
            $"--ControlPlane:DataDirectory={data}",
            $"--ControlPlane:AdminToken={adminToken}",
            $"--ControlPlane:JoinTokens:bench:Token={joinToken}",
        ];
        for (var i = 0; i < services.Count; i++)
        {
            arguments.Add($"--ControlPlane:JoinTokens:bench:Services:{i}={services[i]}");
        }

        arguments.AddRange(extra);
        arguments.AddRange(o.ControlPlaneSettings);
        var dll = o.App("MeshKit.ControlPlane");
        var process = ManagedProcess.Start(name, "dotnet", arguments, Path.Combine(o.Work, "logs"), Path.GetDirectoryName(dll));
        var service = new ControlService(process, address, data, joinToken, adminToken);
        try
        {
            await Readiness.WaitForHttpAsync(new Uri(address, "healthz"), process, cancellationToken);
            await Readiness.PollAsync("trust-bundle.pem", process, () => Task.FromResult(File.Exists(service.TrustBundlePath)), cancellationToken);
        }
        catch
        {
            process.Dispose();
            throw;
        }

        return service;
    }
}
