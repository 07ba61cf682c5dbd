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
    }
}
