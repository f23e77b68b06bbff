using Microsoft.Extensions.Logging;
using Strata.Contracts;
using Strata.Grains.Placement;
using Strata.Grains.Stages;

namespace Strata.Grains.Control;

/// <summary>
/// One silo's control, pinned to that silo (key <c>silo#{address}</c>, placed like a shard). A drain marks the silo
/// in the <see cref="DrainRegistryGrain"/> (no new shards there), asks every model with a shard there to move it
/// (replacement loaded first, then the shard leaves the deployment and unloads, and its sessions replay on the
/// replacement), and returns once the silo holds no stage.
/// </summary>
[PinnedShardPlacement]
internal sealed partial class SiloControlGrain(StageHost host, ILocalSiloDetails silo, IGrainFactory grains, ILogger<SiloControlGrain> logger)
    : Grain, ISiloControlGrain
{
    /// <summary>The control grain key of a silo.</summary>
    public static string KeyOf(string siloAddress) => "silo#" + siloAddress;

    public async Task<DrainReport> Drain()
    {
        string self = silo.SiloAddress.ToParsableString();
        await grains.GetGrain<IDrainRegistryGrain>(DrainRegistryGrain.Key).Add(self);
        var models = host.Workers.Select(w => w.Config.Model).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        LogDrain(logger, self, models.Length);
        int moved = 0, sessions = 0;
        foreach (string model in models)
        {
            var m = await grains.GetGrain<IModelGrain>(model).Drain(self);
            moved += m.Shards;
            sessions += m.Sessions;
        }
        // Stages no deployment names (orphans) go too.
        await host.ReconcileAsync();
        var left = host.StageKeys;
        LogDrained(logger, self, moved, left.Count);
        return new DrainReport(self, models, moved, left.Count, sessions);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "silo {Silo}: draining the stages of {Models} model(s)")]
    private static partial void LogDrain(ILogger logger, string silo, int models);

    [LoggerMessage(Level = LogLevel.Warning, Message = "silo {Silo}: drained, {Moved} shard(s) moved, {Left} left")]
    private static partial void LogDrained(ILogger logger, string silo, int moved, int left);
}
