using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Strata.Client;

namespace Strata.LoadTest;

/// <summary>A client connected to a cluster and the host it runs in. Fails at once with one line when nothing answers
/// (<see cref="StrataClient.ConnectAsync"/> retries for minutes and logs every attempt), as the strata command line does.</summary>
internal sealed class Connection : IAsyncDisposable
{
    private readonly IHost _host;

    private Connection(IHost host, StrataClient client) => (_host, Client) = (host, client);

    public StrataClient Client { get; }

    public static async Task<Connection> ConnectAsync(string? redis, IReadOnlyList<int>? gatewayPorts, string clusterId, CancellationToken ct)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true, Args = [] });
        builder.Logging.AddSimpleConsole(c => c.SingleLine = true)
            .AddConsole(c => c.LogToStandardErrorThreshold = LogLevel.Trace)
            .SetMinimumLevel(LogLevel.Error)
            .AddFilter("Microsoft.Extensions.Hosting", LogLevel.None);
        builder.UseOrleansClient(client =>
        {
            if (redis is not null) client.UseRedisClustering(redis);
            else client.UseStaticClustering((gatewayPorts ?? [30000]).Select(p => new IPEndPoint(IPAddress.Loopback, p)).ToArray());
            client.Configure<ClusterOptions>(o => { o.ClusterId = clusterId; o.ServiceId = clusterId; });
            client.UseConnectionRetryFilter(static (_, _) => Task.FromResult(false));
        });
        builder.Services.AddSingleton<IHostLifetime, QuietLifetime>();
        var host = builder.Build();
        try
        {
            await host.StartAsync(ct);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            host.Dispose();
            if (ct.IsCancellationRequested) throw;
            string where = redis is not null ? $"redis {redis}" : $"gateways {string.Join(",", gatewayPorts ?? [30000])}";
            throw new InvalidOperationException($"cannot reach the cluster at {where} (cluster id '{clusterId}'): {e.GetBaseException().Message}", e);
        }
        return new Connection(host, StrataClient.FromClusterClient(host.Services.GetRequiredService<IClusterClient>()));
    }

    public async ValueTask DisposeAsync()
    {
        try { await _host.StopAsync(TimeSpan.FromSeconds(5)); }
        catch (Exception e) when (e is OperationCanceledException or OrleansException) { /* leaving anyway */ }
        finally { _host.Dispose(); }
    }

    /// <summary>Leaves Ctrl+C to the process (the default console lifetime would take it to stop the host).</summary>
    private sealed class QuietLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
