using System.Diagnostics;
using Microsoft.Extensions.Configuration;

namespace Shop.AppHost;

/// <summary>
/// Finds out whether Aspire can run containers here: the runtime it would use (<c>ASPIRE_CONTAINER_RUNTIME</c>, else
/// Docker) is on the PATH and its engine answers. Asked only when the Shop is told to run a container
/// (<c>--Shop:Consul=container</c>), so that a machine without one gets a sentence instead of a resource stuck in
/// "Starting".
/// </summary>
public static class ContainerRuntime
{
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Gets whether a container runtime answers; <paramref name="problem"/> says why not.</summary>
    /// <param name="configuration">The AppHost's configuration (for <c>ASPIRE_CONTAINER_RUNTIME</c>).</param>
    /// <param name="problem">What is missing, when no runtime answers.</param>
    /// <returns><see langword="true"/> when containers can run.</returns>
    public static bool IsAvailable(IConfiguration configuration, out string problem)
    {
        var runtime = configuration["ASPIRE_CONTAINER_RUNTIME"] ?? configuration["DOTNET_ASPIRE_CONTAINER_RUNTIME"] ?? "docker";
        if (FindOnPath(runtime) is not { } executable)
        {
            problem = $"'{runtime}' is not on the PATH; install Docker or Podman, and for Podman set ASPIRE_CONTAINER_RUNTIME=podman";
            return false;
        }

        try
        {
            using var probe = Process.Start(new ProcessStartInfo(executable, ["info", "--format", "{{.ServerVersion}}"])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            })!;
            var error = probe.StandardError.ReadToEndAsync();
            if (!probe.WaitForExit(ProbeTimeout))
            {
                probe.Kill(entireProcessTree: true);
                problem = $"'{runtime} info' did not answer within {ProbeTimeout.TotalSeconds:0} s; is its engine running?";
                return false;
            }

            if (probe.ExitCode != 0)
            {
                problem = $"'{runtime} info' failed: {error.Result.Trim().TrimEnd('.')}";
                return false;
            }
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            problem = $"'{executable}' could not be started: {ex.Message}";
            return false;
        }

        problem = string.Empty;
        return true;
    }

    private static string? FindOnPath(string name)
    {
        var names = OperatingSystem.IsWindows() ? [name + ".exe", name] : new[] { name };
        foreach (var folder in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            foreach (var candidate in names)
            {
                var path = Path.Combine(folder, candidate);
                if (File.Exists(path))
                {
                    return path;
                }
            }
        }

        return null;
    }
}
