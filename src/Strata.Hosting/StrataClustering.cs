using System.Net;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;

namespace Strata.Hosting;

/// <summary>How a silo finds the cluster: loopback (one machine, no Redis) or Redis (several machines).</summary>
public sealed record ClusteringSettings
{
    /// <summary>Redis "host:port" (plus StackExchange.Redis options); null = localhost clustering.</summary>
    public string? Redis { get; init; }
    /// <summary>Silo-to-silo port.</summary>
    public int SiloPort { get; init; } = 11111;
    /// <summary>Client gateway port.</summary>
    public int GatewayPort { get; init; } = 30000;
    /// <summary>Localhost clustering: the primary silo's silo port (the first silo started).</summary>
    public int PrimarySiloPort { get; init; } = 11111;
    /// <summary>The address other silos and clients reach this silo at (Redis clustering); default loopback.</summary>
    public string AdvertisedAddress { get; init; } = "127.0.0.1";
    /// <summary>Cluster and service id.</summary>
    public string ClusterId { get; init; } = "strata";
}

/// <summary>Clustering for silos.</summary>
public static class StrataClustering
{
    /// <summary>Applies <paramref name="settings"/>: Redis membership when set, else localhost clustering.</summary>
    public static ISiloBuilder UseStrataClustering(this ISiloBuilder silo, ClusteringSettings settings)
    {
        if (settings.Redis is string redis)
        {
            silo.UseRedisClustering(redis);
            silo.Configure<ClusterOptions>(o => { o.ClusterId = settings.ClusterId; o.ServiceId = settings.ClusterId; });
            var address = IPAddress.Parse(settings.AdvertisedAddress);
            silo.ConfigureEndpoints(address, settings.SiloPort, settings.GatewayPort, listenOnAnyHostAddress: !IPAddress.IsLoopback(address));
        }
        else
        {
            silo.UseLocalhostClustering(settings.SiloPort, settings.GatewayPort,
                settings.PrimarySiloPort == settings.SiloPort ? null : new IPEndPoint(IPAddress.Loopback, settings.PrimarySiloPort),
                settings.ClusterId, settings.ClusterId);
        }
        return silo;
    }
}
