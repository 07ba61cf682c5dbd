// MeshKit's micro-benchmarks. Run them all (about 5 minutes on 2 cores):
//   dotnet run -c Release --project benchmarks/MeshKit.Benchmarks -- --filter '*'
// or one class: --filter '*HandlerChain*'. Results go to BenchmarkDotNet.Artifacts/ (not committed); the figures and what
// they mean are in docs/benchmarks.md.
// Where the mesh client's bytes go, by type (sampled allocation ticks): -- --allocations [requests] [--tracing]
using System.Globalization;
using BenchmarkDotNet.Running;

if (args.Length > 0 && args[0] == "--allocations")
{
    var requests = args.Length > 1 && int.TryParse(args[1], NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 200_000;
    return await MeshKit.Benchmarks.Profiling.AllocationProfile.RunAsync(requests, tracing: args.Contains("--tracing"));
}

BenchmarkSwitcher.FromAssembly(typeof(MeshKit.Benchmarks.Support.BenchConfig).Assembly).Run(args, new MeshKit.Benchmarks.Support.BenchConfig());
return 0;
