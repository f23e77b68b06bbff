using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Strata.Contracts;
using Strata.Contracts.Security;
using Strata.Grains.Stages;

namespace Strata.Grains.Control;

/// <summary>
/// SIGTERM (any graceful stop) drains the silo before Orleans deactivates its grains: the first step of the stop,
/// while grain calls still work, moves every stage the silo holds elsewhere (<see cref="SiloControlGrain.Drain"/>),
/// bounded by <see cref="StrataSiloOptions.DrainTimeout"/>. This is how Kubernetes and docker stop a silo.
/// </summary>
public sealed partial class DrainOnShutdown(StageHost host, ILocalSiloDetails silo, IGrainFactory grains,
    IOptions<StrataSiloOptions> options, IServiceProvider services, ILogger<DrainOnShutdown> logger) : ILifecycleParticipant<ISiloLifecycle>
{
    /// <inheritdoc />
    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(DrainOnShutdown), ServiceLifecycleStage.Last, _ => Task.CompletedTask, Stop);

    private async Task Stop(CancellationToken cancellation)
    {
        if (!options.Value.DrainOnShutdown || host.StageKeys.Count == 0) return;
        string self = silo.SiloAddress.ToParsableString();
        try
        {
            // With TLS on, the drain is cluster control: the silo proves itself with its own certificate.
            if (services.GetService(typeof(ClusterTls)) is ClusterTls tls)
                RequestContext.Set(ControlToken.Key, ControlToken.Create(tls, silo.ClusterId, DateTimeOffset.UtcNow));
            var report = await grains.GetGrain<ISiloControlGrain>(SiloControlGrain.KeyOf(self)).Drain()
                .WaitAsync(options.Value.DrainTimeout, cancellation);
            LogDrained(logger, self, report.ShardsMoved, report.ShardsLeft);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            LogFailed(logger, self, e.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "silo {Silo} stopping: drained, {Moved} shard(s) moved, {Left} left")]
    private static partial void LogDrained(ILogger logger, string silo, int moved, int left);

    [LoggerMessage(Level = LogLevel.Error, Message = "silo {Silo} stopping: the drain did not finish ({Error}); its sessions replay elsewhere")]
    private static partial void LogFailed(ILogger logger, string silo, string error);
}
