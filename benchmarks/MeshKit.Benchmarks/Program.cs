// MeshKit's micro-benchmarks. Run them all (about 5 minutes on 2 cores):
//   dotnet run -c Release --project benchmarks/MeshKit.Benchmarks -- --filter '*'
// or one class: --filter '*HandlerChain*'. Results go to BenchmarkDotNet.Artifacts/ (not committed); the figures and what
// they mean are in docs/benchmarks.md.
using BenchmarkDotNet.Running;

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, new MeshKit.Benchmarks.Support.BenchConfig());
