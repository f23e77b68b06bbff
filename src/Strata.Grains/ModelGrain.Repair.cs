using Microsoft.Extensions.Logging;
using Strata.Contracts;
using Strata.Grains.Placement;

namespace Strata.Grains;

internal sealed partial class ModelGrain
{
    /// <summary>
    /// Makes the deployment serve again after a loss and returns a route. One repair at a time: sessions that report
    /// the same loss while a repair runs wait for it, then find every shard serving and get a route at once. Lost
    /// shards are dropped; a stage left with no replica is placed again on a surviving silo (the most memory left,
    /// never a silo that did not answer), as a new plan version. A false alarm (every shard answers) changes nothing.
    /// </summary>
    private async Task<Route> Repair(string? why)
    {
        await _changes.WaitAsync();
        try
        {
            var record = Record;
            if (record.Request is null) throw NotDeployed();
            var probes = await Probe(record.Shards);
            var lost = record.Shards.Where((s, i) => !probes[i].Serves && probes[i].Status.State != DeploymentState.Loading).ToList();
            if (lost.Count == 0)
            {
                var keys = Pick(record, probes);
                if (keys is not null) return ToRoute(record, keys);
                // Some stage is only loading (a repair by an earlier caller): wait for it below.
            }
            else
            {
                var unreachable = record.Shards.Where((s, i) => probes[i].Unreachable).Select(s => ShardKeys.Silo(s.Key)).ToHashSet(StringComparer.Ordinal);
                // Sessions are waiting for this repair and will replay at once: loading replacement replicas now
                // would take CPU and memory bandwidth from those replays. Where every stage still has a replica and
                // the heal timer restores the replica count, that is left to it, one heal interval later.
                bool defer = options.Value.HealInterval > TimeSpan.Zero && record.Request.Replicas is int;
                if (defer) _replicasDue = DateTime.UtcNow + options.Value.HealInterval;
                record = await Replace(record, lost, unreachable, why ?? probes.Where(p => !p.Serves).Select(p => p.Status.Error).FirstOrDefault(),
                    requiredOnly: defer);
            }
            return await WaitForRoute(record);
        }
        finally
        {
            _changes.Release();
        }
    }

    /// <summary>When replicas lost in a repair are restored (by the heal timer): not before the sessions that were
    /// waiting for the repair have replayed.</summary>
    private DateTime _replicasDue;

    /// <summary>Drops <paramref name="lost"/> and places a replacement for every stage it leaves without a replica
    /// (and, unless <paramref name="requiredOnly"/>, for lost replicas where a silo has room), then stores the new
    /// version and starts the loads.</summary>
    private async Task<DeploymentRecord> Replace(DeploymentRecord record, IReadOnlyList<ShardRecord> lost, IReadOnlySet<string> unreachable, string? why,
        bool requiredOnly = false)
    {
        var request = record.Request!;
        var survivors = record.Shards.Except(lost).ToList();
        long version = record.Version + 1;
        var added = Place(lost, survivors, await Candidates(unreachable), version, requiredOnly);

        var next = new DeploymentRecord
        {
            Request = request,
            Version = version,
            Shards = Sorted(survivors.Concat(added)),
        };
        await Store(next);
        LogReplan(logger, Model, version, string.Join(", ", lost.Select(l => l.Key)), why ?? "lost",
            added.Count == 0 ? "nothing (every stage still serves; lost replicas come back at the next heal)"
                : string.Join(", ", added.Select(a => $"stage {a.Config.StageIndex} on {ShardKeys.Silo(a.Key)}")));
        await Task.WhenAll(added.Select(a => grains.GetGrain<IShardGrain>(a.Key).Configure(a.Config)));
        // Shards that answered but no longer serve (unloaded, failed) still hold memory on a live silo.
        await UnloadShards(lost.Where(l => !unreachable.Contains(ShardKeys.Silo(l.Key))));
        return next;
    }

    /// <summary>Polls until every stage has a ready replica (a route), or a stage fails to load.</summary>
    private async Task<Route> WaitForRoute(DeploymentRecord record)
    {
        var deadline = DateTime.UtcNow + options.Value.StageLoadTimeout;
        while (true)
        {
            var probes = await Probe(record.Shards);
            if (Pick(record, probes) is { } keys) return ToRoute(record, keys);
            var (state, error) = Summarize(record, probes);
            if (state == DeploymentState.Failed)
                throw new StrataException(ErrorCodes.StageFailed, $"model '{Model}' cannot serve: {error}");
            if (DateTime.UtcNow > deadline)
                throw new StrataException(ErrorCodes.StageFailed, $"model '{Model}': replacement stages still loading after {options.Value.StageLoadTimeout.TotalSeconds:F0} s");
            await Task.Delay(50);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "model {Model}: plan version {Version}: lost {Lost} ({Why}); placed {Added}")]
    private static partial void LogReplan(ILogger logger, string model, long version, string lost, string why, string added);
}
