using Microsoft.Extensions.Logging;
using Strata.Contracts;
using Strata.Grains.Placement;
using Strata.Models.Planning;

namespace Strata.Grains;

internal sealed partial class ModelGrain
{
    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var every = options.Value.HealInterval;
        if (every > TimeSpan.Zero)
            this.RegisterGrainTimer(Heal, new GrainTimerCreationOptions(every, every) { Interleave = true });
        return base.OnActivateAsync(cancellationToken);
    }

    /// <summary>
    /// Keeps the deployment whole without waiting for a session to trip over a loss (every
    /// <see cref="StrataSiloOptions.HealInterval"/>, skipped while another change runs): shards whose silo the
    /// membership has declared dead are dropped and their stages placed again where needed (as a repair does), and a
    /// stage left with fewer replicas than the deployment asks for (a loss that found no silo with room, before a
    /// replacement silo joined, or one a repair left to this timer) gets them back on silos that have room now, once
    /// the sessions a repair moved have had a heal interval to replay. Each change is a new plan version.
    /// </summary>
    private async Task Heal(CancellationToken cancellation)
    {
        if (Record.Request is null || !await _changes.WaitAsync(0, cancellation)) return;
        try
        {
            var record = Record;
            var gone = record.Shards.Where(s => IsDead(ShardKeys.Silo(s.Key))).ToList();
            if (gone.Count > 0)
                record = await Replace(record, gone, gone.Select(s => ShardKeys.Silo(s.Key)).ToHashSet(StringComparer.Ordinal), "its silo left the cluster");
            if (record.Request!.Replicas is not int wanted || record.Shards.GroupBy(s => s.Config.StageIndex).All(g => g.Count() >= wanted)) return;
            if (DateTime.UtcNow < _replicasDue) return; // a repair just moved sessions: let their replays run first
            long version = record.Version + 1;
            var extra = ShardPlacement.AddReplicas(
                record.Shards.Select(s => new PlacedShard(s.Config.StageIndex, s.Replica, ShardKeys.Silo(s.Key), s.Bytes)).ToList(), await Candidates([]), wanted);
            if (extra.Count == 0) return;
            var added = extra.Select(e =>
            {
                var model = record.Shards.First(s => s.Config.StageIndex == e.Stage);
                return model with { Key = ShardKeys.Format(Model, e.Stage, version, e.SiloId, e.Replica), Replica = e.Replica };
            }).ToList();
            await Store(new DeploymentRecord { Request = record.Request, Version = version, Shards = Sorted(record.Shards.Concat(added)) });
            LogHealed(logger, Model, version, string.Join(", ", added.Select(a => $"stage {a.Config.StageIndex} on {ShardKeys.Silo(a.Key)}")));
            await Task.WhenAll(added.Select(a => grains.GetGrain<IShardGrain>(a.Key).Configure(a.Config)));
        }
        catch (Exception e) when (e is not OutOfMemoryException and not OperationCanceledException)
        {
            LogHealFailed(logger, Model, Describe(e));
        }
        finally
        {
            _changes.Release();
        }
    }

    /// <summary>Whether the membership has declared <paramref name="silo"/> dead (or forgotten it): a silo that is
    /// joining, active or stopping is not.</summary>
    private bool IsDead(string silo)
    {
        var member = membership.CurrentSnapshot.Members.Values.FirstOrDefault(m => m.SiloAddress.ToParsableString() == silo);
        return member is null || member.Status == SiloStatus.Dead;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "model {Model}: plan version {Version}: replicas restored: {Added}")]
    private static partial void LogHealed(ILogger logger, string model, long version, string added);

    [LoggerMessage(Level = LogLevel.Information, Message = "model {Model}: keeping the deployment whole failed this time: {Error}")]
    private static partial void LogHealFailed(ILogger logger, string model, string error);
}
