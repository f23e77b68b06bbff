using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;
using Orleans.Serialization;
using Orleans.Storage;
using StackExchange.Redis;
using Strata.Contracts.Security;
using Strata.Grains;

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
    /// <summary>Initial timeout of a liveness probe between silos (Orleans adapts it between half and four times
    /// this). Default 2 s (Orleans' own is 5 s).</summary>
    public TimeSpan ProbeTimeout { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>Missed probes after which a silo suspects another. Default 2 (Orleans' own is 3). With the probe
    /// timeout this bounds how soon a killed silo is declared dead: about 4-6 s here, against 10-15 s by default.</summary>
    public int MissedProbes { get; init; } = 2;
    /// <summary>Suspicions needed to declare a silo dead (at most the silos that probe it). Default 2.</summary>
    public int DeathVotes { get; init; } = 2;
    /// <summary>How often each silo reads the whole membership table (gossip carries changes sooner). Default 10 s.</summary>
    public TimeSpan TableRefresh { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Where the cluster records which silo holds each grain; every silo of a cluster must agree.
    /// <list type="bullet">
    /// <item><c>auto</c> (default): <c>redis</c> with Redis clustering, else <c>local</c>.</item>
    /// <item><c>redis</c>: in Redis, beside the membership table. A silo's death loses only its own activations.</item>
    /// <item><c>local</c>: Orleans' default, spread over the silos' memory. When a silo dies, every grain whose entry it
    /// held is deactivated wherever it runs (about a third of the sessions on 3 silos, mid-turn).</item>
    /// <item><c>distributed</c>: Orleans' experimental distributed directory, which recovers a dead silo's range from
    /// the others' activations, but holds it under a lease of about 14 s first.</item>
    /// </list></summary>
    public string Directory { get; init; } = "auto";

    /// <summary><see cref="Directory"/> with <c>auto</c> resolved.</summary>
    public string EffectiveDirectory => Directory.Trim().ToLowerInvariant() is "auto" or "" ? (Redis is null ? "local" : "redis") : Directory.Trim().ToLowerInvariant();
    /// <summary>A certificate folder (<c>strata certs create DIR</c>): when set, every connection to and from this
    /// silo is mutual TLS with the cluster's certificates; silos and clients without one are refused.</summary>
    public string? Tls { get; init; }

    /// <summary>The settings that are out of range, each naming its key.</summary>
    public IEnumerable<string> Errors()
    {
        if (ProbeTimeout < TimeSpan.FromMilliseconds(200) || ProbeTimeout > TimeSpan.FromMinutes(1))
            yield return $"Cluster:ProbeTimeout must be between 0.2 s and 1 minute, got {ProbeTimeout}";
        if (MissedProbes is < 1 or > 10) yield return $"Cluster:MissedProbes must be between 1 and 10, got {MissedProbes}";
        if (DeathVotes is < 1 or > 10) yield return $"Cluster:DeathVotes must be between 1 and 10, got {DeathVotes}";
        if (TableRefresh < TimeSpan.FromSeconds(1)) yield return $"Cluster:TableRefresh must be at least 1 s, got {TableRefresh}";
        if (EffectiveDirectory is not ("local" or "redis" or "distributed"))
            yield return $"Cluster:Directory must be auto, local, redis or distributed, got '{Directory}'";
        else if (EffectiveDirectory == "redis" && Redis is null)
            yield return "Cluster:Directory redis needs Redis clustering (Cluster:Redis, --redis)";
    }
}

/// <summary>Clustering for silos.</summary>
public static class StrataClustering
{
    /// <summary>Applies <paramref name="settings"/>: Redis membership when set, else localhost clustering.</summary>
    public static ISiloBuilder UseStrataClustering(this ISiloBuilder silo, ClusteringSettings settings)
    {
        if (settings.Errors().ToList() is { Count: > 0 } errors)
            throw new Microsoft.Extensions.Options.OptionsValidationException("Cluster", typeof(ClusteringSettings), errors);
        // Measured under kill -9 (loadtests/bench-faults.sh): the distributed directory holds the dead silo's range
        // under a lease of about 14 s, and every stream whose grains lived in it stalled that long (p50 15.6 s); the
        // local one deactivates the survivors' grains whose entries the dead silo held, so their clients resume.
#pragma warning disable ORLEANSEXP003 // experimental in Orleans 10
        if (settings.EffectiveDirectory == "distributed") silo.AddDistributedGrainDirectory();
#pragma warning restore ORLEANSEXP003
        silo.Configure<ClusterMembershipOptions>(o =>
        {
            o.ProbeTimeout = settings.ProbeTimeout;
            o.MinProbeTimeout = settings.ProbeTimeout / 2;
            o.MaxProbeTimeout = settings.ProbeTimeout * 4;
            o.NumMissedProbesLimit = settings.MissedProbes;
            o.NumVotesForDeathDeclaration = settings.DeathVotes;
            o.TableRefreshTimeout = settings.TableRefresh;
        });
        if (settings.Tls is string dir)
        {
            var tls = ClusterTls.Load(dir, ClusterRole.Silo);
            silo.UseTls(tls.Certificate, tls.Apply);
            silo.Services.AddSingleton(tls);
            silo.Services.TryAddSingleton(TimeProvider.System);
            silo.AddIncomingGrainCallFilter<ControlCallFilter>();
        }
        if (settings.Redis is string redis)
        {
            silo.UseRedisClustering(redis);
            // Deployments and sessions live beside the membership table, so they outlast any one silo.
            silo.AddRedisGrainStorage(StrataStorage.Name, b => b.Configure<Serializer>((o, serializer) =>
            {
                o.ConfigurationOptions = ConfigurationOptions.Parse(redis);
                o.GrainStorageSerializer = new OrleansGrainStorageSerializer(serializer);
            }));
            if (settings.EffectiveDirectory == "redis")
                silo.UseRedisGrainDirectoryAsDefault(o => o.ConfigurationOptions = ConfigurationOptions.Parse(redis));
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
