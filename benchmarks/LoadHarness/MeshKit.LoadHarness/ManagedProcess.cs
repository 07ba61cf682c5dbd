using System.Diagnostics;
using System.Globalization;

namespace MeshKit.LoadHarness;

/// <summary>
/// A process this harness started: output goes to a log file, its pid is written to the run's pid file (so run.sh's
/// trap can end it even if the harness dies), and it is killed on dispose. Reads its CPU time and peak RSS from /proc.
/// </summary>
internal sealed class ManagedProcess : IDisposable
{
    private static readonly Lock PidFileGate = new();
    private readonly Process _process;

    private ManagedProcess(string name, Process process)
    {
        Name = name;
        _process = process;
    }

    public string Name { get; }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>Gets the clock ticks per second of /proc/&lt;pid&gt;/stat times (USER_HZ, 100 on Linux).</summary>
    public static double TicksPerSecond { get; set; } = 100;

    public static ManagedProcess Start(string name, string fileName, IEnumerable<string> arguments, string logFolder, string? workingDirectory = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Directory.GetCurrentDirectory(),
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        // The apps run with their defaults: no inherited development settings.
        info.Environment.Remove("ASPNETCORE_ENVIRONMENT");
        info.Environment.Remove("DOTNET_ENVIRONMENT");
        info.Environment["DOTNET_NOLOGO"] = "1";

        // Nor inherited OpenTelemetry or mesh settings: an OTEL_EXPORTER_OTLP_ENDPOINT in the shell would make the meshkit
        // topologies export (and only them), a Mesh__... variable would tune MeshKit away from its defaults.
        foreach (var key in info.Environment.Keys.Where(k => k.StartsWith("OTEL_", StringComparison.OrdinalIgnoreCase) || k.StartsWith("Mesh__", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            info.Environment.Remove(key);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {name} ({fileName}).");
        var managed = new ManagedProcess(name, process);
        lock (PidFileGate)
        {
            File.AppendAllText(Path.Combine(logFolder, "pids"), process.Id.ToString(CultureInfo.InvariantCulture) + "\n");
        }

        var log = new StreamWriter(Path.Combine(logFolder, name + ".log"), append: true) { AutoFlush = true };
        var logGate = new Lock();
        void Write(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (logGate)
            {
                log.WriteLine(line);
            }
        }

        process.OutputDataReceived += (_, e) => Write(e.Data);
        process.ErrorDataReceived += (_, e) => Write(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.Exited += (_, _) => Write($"[harness] {name} exited with {SafeExitCode(process)}");
        process.EnableRaisingEvents = true;
        return managed;
    }

    /// <summary>Gets user + system CPU time so far, in milliseconds (all threads of the process).</summary>
    public double CpuMilliseconds()
    {
        var stat = File.ReadAllText($"/proc/{Pid}/stat");

        // The command name (field 2) may hold spaces; fields after it start past the last ')'.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var utime = long.Parse(fields[11], CultureInfo.InvariantCulture);
        var stime = long.Parse(fields[12], CultureInfo.InvariantCulture);
        return (utime + stime) * 1000.0 / TicksPerSecond;
    }

    /// <summary>Gets the peak resident set size (VmHWM) since start or since <see cref="ResetPeakRss"/>, in MB.</summary>
    public double PeakRssMegabytes()
    {
        foreach (var line in File.ReadLines($"/proc/{Pid}/status"))
        {
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            {
                var kb = long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
                return kb / 1024.0;
            }
        }

        throw new InvalidOperationException($"/proc/{Pid}/status has no VmHWM.");
    }

    /// <summary>Gets the resident set size now (VmRSS), in MB.</summary>
    public double RssMegabytes()
    {
        foreach (var line in File.ReadLines($"/proc/{Pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                var kb = long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
                return kb / 1024.0;
            }
        }

        throw new InvalidOperationException($"/proc/{Pid}/status has no VmRSS.");
    }

    /// <summary>Resets VmHWM to the current RSS (Linux 4.0+: write 5 to clear_refs), so a peak belongs to one measurement.</summary>
    public void ResetPeakRss() => File.WriteAllText($"/proc/{Pid}/clear_refs", "5");

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(TimeSpan.FromSeconds(10));
            }
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
    }

    private static string SafeExitCode(Process process)
    {
        try
        {
            return process.ExitCode.ToString(CultureInfo.InvariantCulture);
        }
        catch (InvalidOperationException)
        {
            return "?";
        }
    }
}
