using System.Runtime.CompilerServices;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;

namespace MeshKit.Benchmarks.Support;

/// <summary>
/// One short job per benchmark (the machine is shared and small; allocations, the figure with a goal, are exact with any
/// iteration count) and the memory diagnoser on every benchmark. Each class gets its own summary table.
/// </summary>
public sealed class BenchConfig : ManualConfig
{
    public BenchConfig()
    {
        AddJob(Job.Default.WithLaunchCount(1).WithWarmupCount(3).WithIterationCount(10));
        AddDiagnoser(MemoryDiagnoser.Default);
        Add(DefaultConfig.Instance);

        // Bytes, not KB: the goal is about a few hundred bytes per request.
        SummaryStyle = BenchmarkDotNet.Reports.SummaryStyle.Default.WithSizeUnit(Perfolizer.Metrology.SizeUnit.B);

        // Artifacts beside the project (ignored by git), wherever the command is run from.
        ArtifactsPath = Path.Combine(ProjectDirectory(), "BenchmarkDotNet.Artifacts");
    }

    // A CI build maps source paths (ContinuousIntegrationBuild), so the compile-time path may not exist here.
    private static string ProjectDirectory([CallerFilePath] string path = "")
    {
        var project = Path.GetDirectoryName(Path.GetDirectoryName(path));
        return project is not null && Directory.Exists(project) ? project : Directory.GetCurrentDirectory();
    }
}
