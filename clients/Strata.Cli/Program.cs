using Strata.Cli;

return await CliApp.RunAsync(args);
