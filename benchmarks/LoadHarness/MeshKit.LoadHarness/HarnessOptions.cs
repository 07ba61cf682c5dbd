using System.Globalization;

namespace MeshKit.LoadHarness;

/// <summary>What one harness run does; every value has a default so that <c>benchmarks/run.sh</c> alone is a full run.</summary>
internal sealed class HarnessOptions
{
    public static readonly string[] AllTopologies = ["direct-http", "direct-mtls", "direct-mtls-h2", "direct-mtls-h2-otel", "meshkit", "meshkit-notrace", "sidecar-haproxy", "direct-grpc-mtls", "meshkit-grpc"];

    /// <summary>The concurrency of the warm-up curve (the issue's goal is about the rate at 64).</summary>
    public const int WarmupCurveConcurrency = 64;

    /// <summary>Gets the repository root (binaries are found under it).</summary>
    public string Repo { get; private set; } = Directory.GetCurrentDirectory();

    /// <summary>Gets the folder for certificates, configs and process logs of this run.</summary>
    public string Work { get; private set; } = string.Empty;

    /// <summary>Gets where the results go.</summary>
    public string Output { get; private set; } = "benchmarks/results/latest.json";

    /// <summary>Gets the command line recorded in the results.</summary>
    public string Command { get; private set; } = "benchmarks/run.sh";

    public int DurationSeconds { get; private set; } = 10;

    /// <summary>Gets the warm-up before every measured run, at the same concurrency (3 s left the mesh caller short of its steady rate).</summary>
    public int WarmupSeconds { get; private set; } = 10;

    /// <summary>
    /// Gets how long each topology is driven right after it starts, in back-to-back 1 s wrk runs at concurrency 64, to time
    /// its warm-up (0: no warm-up curves; every topology is then started before any load, as before).
    /// </summary>
    public int WarmupCurveSeconds { get; private set; } = 40;

    public int Repeats { get; private set; } = 5;

    public IReadOnlyList<int> Concurrencies { get; private set; } = [1, 16, 64];

    public IReadOnlyList<string> Topologies { get; private set; } = AllTopologies;

    public bool ControlPlane { get; private set; } = true;

    public bool Load { get; private set; } = true;

    /// <summary>Gets the numbers of waiting watchers the push is measured at, in increasing order (the watchers of each are added to the previous ones).</summary>
    public IReadOnlyList<int> WatcherCounts { get; private set; } = [1000, 10000];

    /// <summary>Gets the largest number of watchers.</summary>
    public int Watchers => WatcherCounts[^1];

    /// <summary>Gets the replica counts the control service is measured at: 1 is one control service alone; more are replicas sharing a Consul double.</summary>
    public IReadOnlyList<int> Replicas { get; private set; } = [1, 3];

    public int PushRounds { get; private set; } = 6;

    /// <summary>Gets extra settings for the control services of the control-service figures (--control-plane-setting KEY=VALUE, repeatable), for experiments such as a log level.</summary>
    public IReadOnlyList<string> ControlPlaneSettings => _controlPlaneSettings;

    private readonly List<string> _controlPlaneSettings = [];

    public int CsrConcurrency { get; private set; } = 16;

    /// <summary>Gets whether simulated watchers open a new connection for every poll (MeshKit's own client keeps its connection while its certificate lasts).</summary>
    public bool WatchReconnect { get; private set; }

    public string Configuration { get; private set; } = "Release";

    /// <summary>
    /// Gets whether each measured run is profiled: dotnet-trace (sampled thread stacks) and dotnet-counters attached to every
    /// .NET process of the topology, output in &lt;work&gt;/profiles. Profiling perturbs the figures: never for the committed run.
    /// </summary>
    public bool Profile { get; private set; }

    /// <summary>Gets whether to only rewrite latest.md from the latest.json and latest-raw.json already written.</summary>
    public bool ReportOnly { get; private set; }

    public static HarnessOptions Parse(string[] args)
    {
        var o = new HarnessOptions();
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            int NextInt() => int.Parse(Next(), NumberStyles.None, CultureInfo.InvariantCulture);
            switch (args[i])
            {
                case "--repo": o.Repo = Path.GetFullPath(Next()); break;
                case "--work": o.Work = Path.GetFullPath(Next()); break;
                case "--out": o.Output = Next(); break;
                case "--command": o.Command = Next(); break;
                case "--duration": o.DurationSeconds = NextInt(); break;
                case "--warmup": o.WarmupSeconds = NextInt(); break;
                case "--warmup-curve": o.WarmupCurveSeconds = NextInt(); break;
                case "--repeats": o.Repeats = NextInt(); break;
                case "--concurrency": o.Concurrencies = [.. Next().Split(',').Select(c => int.Parse(c, CultureInfo.InvariantCulture))]; break;
                case "--topologies": o.Topologies = [.. Next().Split(',')]; break;
                case "--watchers": o.WatcherCounts = [.. Next().Split(',').Select(c => int.Parse(c, CultureInfo.InvariantCulture)).Order()]; break;
                case "--control-plane-setting": o._controlPlaneSettings.Add("--" + Next()); break;
                case "--replicas": o.Replicas = [.. Next().Split(',').Select(c => int.Parse(c, CultureInfo.InvariantCulture))]; break;
                case "--push-rounds": o.PushRounds = NextInt(); break;
                case "--csr-concurrency": o.CsrConcurrency = NextInt(); break;
                case "--configuration": o.Configuration = Next(); break;
                case "--no-control-plane": o.ControlPlane = false; break;
                case "--no-load": o.Load = false; break;
                case "--profile": o.Profile = true; break;
                case "--report-only": o.ReportOnly = true; break;
                case "--watch-reconnect": o.WatchReconnect = true; break;
                default: throw new ArgumentException($"Unknown option '{args[i]}'. See benchmarks/run.sh --help.");
            }
        }

        foreach (var t in o.Topologies)
        {
            if (!AllTopologies.Contains(t))
            {
                throw new ArgumentException($"--topologies: '{t}' is not one of {string.Join(", ", AllTopologies)}.");
            }
        }

        if (o.DurationSeconds is < 1 or > 600 || o.WarmupSeconds is < 0 or > 120 || o.Repeats is < 1 or > 20 || o.WarmupCurveSeconds is < 0 or > 300
            || (o.WarmupCurveSeconds is > 0 and < 4))
        {
            throw new ArgumentException("--duration must be 1..600 s, --warmup 0..120 s, --repeats 1..20, --warmup-curve 0 or 4..300 s.");
        }

        if (o.WatcherCounts.Count == 0 || o.WatcherCounts.Any(c => c is < 1 or > 30000) || o.Replicas.Count == 0 || o.Replicas.Any(r => r is < 1 or > 5))
        {
            throw new ArgumentException("--watchers must be counts from 1 to 30000 (for example 1000,10000), --replicas counts from 1 to 5 (for example 1,3).");
        }

        if (o.Work.Length == 0)
        {
            o.Work = Path.Combine(o.Repo, "benchmarks", "results", "tmp", DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
        }

        o.Output = Path.GetFullPath(Path.Combine(o.Repo, o.Output));
        return o;
    }

    /// <summary>Gets the path of a built app's dll.</summary>
    public string App(string project) => project switch
    {
        "MeshKit.ControlPlane" => Path.Combine(Repo, "src", project, "bin", Configuration, "net10.0", project + ".dll"),
        _ => Path.Combine(Repo, "benchmarks", "LoadHarness", project, "bin", Configuration, "net10.0", project + ".dll"),
    };
}
