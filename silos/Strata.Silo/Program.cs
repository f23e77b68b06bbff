using Microsoft.Extensions.Hosting;
using Strata.Hosting;

try
{
    await StrataSiloHost.CreateBuilder(args).Build().RunAsync();
    return 0;
}
catch (Exception e) when (e is ArgumentException or FormatException or Microsoft.Extensions.Options.OptionsValidationException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}
