using MeshKit.Cli;

return await Meshctl.InvokeAsync(args, CliEnvironment.FromProcess()).ConfigureAwait(false);
