using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Runtime.MembershipService.SiloMetadata;
using Strata.Client;
using Strata.Grains;
using Strata.Hosting;

namespace Strata.Cli;

/// <summary>What <see cref="EmbeddedCluster.StartAsync"/> starts.</summary>
public sealed record EmbeddedClusterOptions
{
    /// <summary>Silos to start (at least 1; the first is the primary).</summary>
    public int Silos { get; init; } = 2;

    /// <summary>Folder that relative package paths resolve against, shared by every silo.</summary>
    public required string ModelStore { get; init; }

    /// <summary>Each silo's budget for weights plus KV (a plan limit, not an allocation). Default 4GB, as a silo's.</summary>
    public string Memory { get; init; } = "4GB";

    /// <summary>ONNX Runtime threads of the process (0 = one per core). The pool is process-wide: the first stage
    /// loaded in the process decides.</summary>
    public int Threads { get; init; }

    /// <summary>Cluster and service id; clients must use the same.</summary>
    public string ClusterId { get; init; } = "strata";

    /// <summary>Least level logged to stderr (Orleans is chatty below Warning).</summary>
    public LogLevel LogLevel { get; init; } = LogLevel.Warning;

    /// <summary>A certificate folder: the silos use mutual TLS with it (clients need its certificates too).</summary>
    public string? Tls { get; init; }

    /// <summary>How long starting may take before it is given up.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromMinutes(1);
}

/// <summary>
/// A Strata cluster inside this process: N silos on loopback with free ports, localhost clustering (the first silo
/// is the primary and holds the membership), no Redis. <c>strata demo</c> runs on it; tests point the command line at
/// its gateways as at any cluster.
/// </summary>
public sealed class EmbeddedCluster : IAsyncDisposable
{
    private readonly List<IHost> _silos;
    private volatile bool _stopping;

    private EmbeddedCluster(List<IHost> silos, IReadOnlyList<int> siloPorts, IReadOnlyList<int> gatewayPorts, string clusterId)
    {
        _silos = silos;
        SiloPorts = siloPorts;
        GatewayPorts = gatewayPorts;
        ClusterId = clusterId;
    }

    /// <summary>Silo-to-silo ports, in start order.</summary>
    public IReadOnlyList<int> SiloPorts { get; }

    /// <summary>Client gateway ports, in start order.</summary>
    public IReadOnlyList<int> GatewayPorts { get; }

    /// <summary>Cluster id the silos use.</summary>
    public string ClusterId { get; }

    /// <summary>The silo hosts, primary first.</summary>
    public IReadOnlyList<IHost> Silos => _silos;

    /// <summary>Where a client finds this cluster.</summary>
    public ClusterTarget Target => new(null, GatewayPorts, ClusterId);

    /// <summary>Starts the silos (primary first) and returns once every silo sees all of them active with their
    /// Strata capacity, so a deployment can plan over all of them.</summary>
    public static async Task<EmbeddedCluster> StartAsync(EmbeddedClusterOptions options, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Silos < 1) throw new ArgumentException($"an embedded cluster needs at least 1 silo, got {options.Silos}", nameof(options));
        int[] ports = FreePorts.Take(2 * options.Silos);
        int[] siloPorts = ports[..options.Silos], gatewayPorts = ports[options.Silos..];
        var hosts = new List<IHost>();
        var cluster = new EmbeddedCluster(hosts, siloPorts, gatewayPorts, options.ClusterId);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        timeout.CancelAfter(options.StartTimeout);
        try
        {
            for (int i = 0; i < options.Silos; i++) hosts.Add(cluster.BuildSilo(options, i, siloPorts[i], gatewayPorts[i], siloPorts[0]));
            await hosts[0].StartAsync(timeout.Token);
            await Task.WhenAll(hosts.Skip(1).Select(h => h.StartAsync(timeout.Token)));
            await cluster.WaitUntilJoinedAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
        {
            await cluster.DisposeAsync();
            throw new TimeoutException($"the embedded cluster of {options.Silos} silos did not start within {options.StartTimeout.TotalSeconds:F0} s");
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
        return cluster;
    }

    private IHost BuildSilo(EmbeddedClusterOptions options, int index, int siloPort, int gatewayPort, int primaryPort)
    {
        // DisableDefaults: no appsettings.json or environment variables from wherever the process runs.
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true, Args = [] });
        builder.Logging.AddSimpleConsole(c => c.SingleLine = true)
            .AddConsole(c => c.LogToStandardErrorThreshold = LogLevel.Trace)
            .AddFilter((category, level) => level >= LeastLevel(options, category));
        var clustering = new ClusteringSettings
        {
            SiloPort = siloPort,
            GatewayPort = gatewayPort,
            PrimarySiloPort = primaryPort,
            ClusterId = options.ClusterId,
            Tls = options.Tls,
        };
        builder.UseOrleans(silo =>
        {
            silo.UseStrataClustering(clustering);
            silo.AddStrata(null, o =>
            {
                o.ModelStore = options.ModelStore;
                o.Memory = options.Memory;
                o.Threads = options.Threads;
                o.DrainOnShutdown = false; // the whole cluster stops at once: nowhere to drain to
                o.Calibrate = false; // its silos share one machine and one thread pool: measuring each tells the planner nothing
            });
            silo.Configure<SiloOptions>(o => o.SiloName = $"silo-{index}");
        });
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
        builder.Services.AddSingleton<IHostLifetime, PassiveHostLifetime>();
        return builder.Build();
    }

    private LogLevel LeastLevel(EmbeddedClusterOptions options, string? category)
    {
        // While the whole cluster stops, sessions releasing KV on shards already gone fail by design: quiet.
        if (_stopping) return LogLevel.Critical;
        // Start-up advice meant for production silos (server GC) and a watchdog that misreads its first check.
        if (category is "Orleans.Runtime.Silo" or "Orleans.Runtime.Watchdog") return LogLevel.Error;
        return options.LogLevel;
    }

    private async Task WaitUntilJoinedAsync(CancellationToken cancellation)
    {
        while (true)
        {
            bool all = _silos.All(h =>
            {
                var active = h.Services.GetRequiredService<IClusterMembershipService>().CurrentSnapshot.Members.Values
                    .Where(m => m.Status == SiloStatus.Active).ToList();
                var metadata = h.Services.GetRequiredService<ISiloMetadataCache>();
                return active.Count == _silos.Count &&
                       active.All(m => metadata.GetSiloMetadata(m.SiloAddress).Metadata.ContainsKey(StrataMetadata.Memory));
            });
            if (all) return;
            await Task.Delay(50, cancellation);
        }
    }

    /// <summary>Stops the silos, the primary last (it holds the membership the others report to).</summary>
    public async ValueTask DisposeAsync()
    {
        _stopping = true;
        foreach (var host in Enumerable.Reverse(_silos))
        {
            try { await host.StopAsync(TimeSpan.FromSeconds(10)); }
            catch (Exception e) when (e is OperationCanceledException or OrleansException) { /* stopping anyway */ }
            finally { host.Dispose(); }
        }
        _silos.Clear();
    }
}
