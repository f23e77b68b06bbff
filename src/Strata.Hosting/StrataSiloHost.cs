using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Strata.Grains;

namespace Strata.Hosting;

/// <summary>
/// Builds a Strata silo host from configuration: appsettings.json, environment variables (STRATA__Strata__Device,
/// ...) and command-line flags. The silo executable is this plus <c>Run()</c>.
/// </summary>
public static class StrataSiloHost
{
    /// <summary>Command-line flags and the configuration keys they set.</summary>
    public static readonly IReadOnlyDictionary<string, string> Flags = new Dictionary<string, string>
    {
        ["--redis"] = "Cluster:Redis",
        ["--silo-port"] = "Cluster:SiloPort",
        ["--gateway-port"] = "Cluster:GatewayPort",
        ["--primary-port"] = "Cluster:PrimarySiloPort",
        ["--advertise"] = "Cluster:AdvertisedAddress",
        ["--cluster-id"] = "Cluster:ClusterId",
        ["--name"] = "Cluster:SiloName",
        ["--device"] = "Strata:Device",
        ["--memory"] = "Strata:Memory",
        ["--model-store"] = "Strata:ModelStore",
        ["--threads"] = "Strata:Threads",
        ["--speed"] = "Strata:Speed",
    };

    /// <summary>Creates the silo host builder.</summary>
    public static HostApplicationBuilder CreateBuilder(string[] args)
    {
        var unknown = args.Where((a, i) => a.StartsWith("--", StringComparison.Ordinal) && !Flags.ContainsKey(a.Split('=')[0])).ToList();
        if (unknown.Count > 0)
            throw new ArgumentException($"unknown option {unknown[0]}; options: {string.Join(", ", Flags.Keys)}");

        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.AddEnvironmentVariables("STRATA__");
        builder.Configuration.AddCommandLine(args, Flags.ToDictionary(kv => kv.Key, kv => kv.Value));
        builder.Logging.AddSimpleConsole(c => { c.SingleLine = true; c.TimestampFormat = "HH:mm:ss "; });
        builder.Logging.AddFilter("Orleans", LogLevel.Warning).AddFilter("Microsoft", LogLevel.Warning);

        var cluster = new ClusteringSettings();
        builder.Configuration.GetSection("Cluster").Bind(cluster);
        string? siloName = builder.Configuration["Cluster:SiloName"];
        builder.UseOrleans(silo =>
        {
            silo.UseStrataClustering(cluster);
            silo.AddStrata(builder.Configuration);
            silo.Configure<SiloOptions>(o => o.SiloName = siloName ?? $"silo-{cluster.SiloPort}");
        });
        builder.Services.AddHostedService<ReadyAnnouncer>();
        return builder;
    }

    /// <summary>Writes one line when the silo has joined the cluster: the signal scripts and tests wait for.</summary>
    private sealed class ReadyAnnouncer(IHostApplicationLifetime lifetime, IOptions<StrataSiloOptions> options,
        Orleans.Runtime.ILocalSiloDetails silo) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            lifetime.ApplicationStarted.Register(() =>
                Console.WriteLine($"strata-silo ready: {silo.Name} at {silo.SiloAddress} gateway {silo.GatewayAddress}, " +
                                  $"device {options.Value.Device}, memory {options.Value.Memory}, model store {Path.GetFullPath(options.Value.ModelStore)}"));
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
