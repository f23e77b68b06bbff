using Microsoft.Extensions.Hosting;
using Strata.Hosting;

try
{
    await StrataSiloHost.CreateBuilder(args).Build().RunAsync();
    return 0;
}
catch (Exception e) when (e is ArgumentException or FormatException or InvalidDataException or Microsoft.Extensions.Options.OptionsValidationException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}
catch (InvalidOperationException e) when (e.InnerException is FormatException or ArgumentException)
{
    // A setting of the wrong type (--threads abc, --pipelining maybe): configuration binding names the key.
    var flag = StrataSiloHost.Flags.FirstOrDefault(f => e.Message.Contains($"'{f.Value}'", StringComparison.Ordinal)).Key;
    Console.Error.WriteLine($"error: {e.Message}{(flag is null ? "" : $" (set by {flag})")}");
    return 2;
}
catch (InvalidOperationException e) when (e.InnerException is System.Net.HttpListenerException listener)
{
    Console.Error.WriteLine($"error: the metrics endpoint (--metrics-port, --metrics-host) could not start: {listener.Message}");
    return 2;
}
