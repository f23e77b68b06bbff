using Microsoft.Extensions.Logging;
using Strata.Contracts;
using Strata.Grains.Control;
using Strata.Grains.Placement;
using Strata.Models.Planning;

namespace Strata.Grains;

internal sealed partial class ModelGrain
{
    /// <summary>The silos new shards may go to: active, advertising capacity, not draining, not in
    /// <paramref name="excluded"/>.</summary>
    private async Task<List<SiloCapacity>> Candidates(IEnumerable<string> excluded)
    {
        var skip = excluded.ToHashSet(StringComparer.Ordinal);
        try
        {
            foreach (string s in await grains.GetGrain<IDrainRegistryGrain>(DrainRegistryGrain.Key).Get()) skip.Add(s);
        }
        catch (Exception e) when (e is TimeoutException or OrleansException)
        {
            // The registry is unreachable while the cluster settles: place as if nothing drained.
        }
        return LiveSilos(skip);
    }

    public async Task<ShardMoves> Drain(string silo)
    {
        await _changes.WaitAsync();
        try
        {
            var record = Record;
            var leaving = record.Shards.Where(s => ShardKeys.Silo(s.Key) == silo).ToList();
            if (record.Request is null || leaving.Count == 0) return new ShardMoves(0, 0);
            var staying = record.Shards.Except(leaving).ToList();

            // Replacements first, so that every stage keeps a ready replica throughout; then the leaving shards go.
            long version = record.Version + 1;
            var added = Place(leaving, staying, await Candidates([silo]), version);
            var both = new DeploymentRecord { Request = record.Request, Version = version, Shards = Sorted(staying.Concat(leaving).Concat(added)) };
            await Store(both);
            await Task.WhenAll(added.Select(a => grains.GetGrain<IShardGrain>(a.Key).Configure(a.Config)));
            await WaitForReady(added);

            await Store(new DeploymentRecord { Request = record.Request, Version = version + 1, Shards = Sorted(staying.Concat(added)) });
            LogDrain(logger, Model, silo, version + 1, string.Join(", ", added.Select(a => $"stage {a.Config.StageIndex} on {ShardKeys.Silo(a.Key)}")));
            int sessions = await MoveSessions(leaving);
            // Sessions still on them (a move that timed out, a turn that began meanwhile) find them gone at their next
            // step and replay on the others.
            await UnloadShards(leaving);
            return new ShardMoves(leaving.Count, sessions);
        }
        finally
        {
            _changes.Release();
        }
    }

    public async Task<ModelStatus> Scale(int? replicas)
    {
        if (replicas is < 1 or > 64) throw new StrataException(ErrorCodes.InvalidRequest, $"replicas must be between 1 and 64 (or auto), got {replicas}");
        await _changes.WaitAsync();
        try
        {
            var record = Record;
            if (record.Request is null) throw NotDeployed();
            long version = record.Version + 1;
            var silos = await Candidates([]);
            var extra = ShardPlacement.AddReplicas(
                record.Shards.Select(s => new PlacedShard(s.Config.StageIndex, s.Replica, ShardKeys.Silo(s.Key), s.Bytes)).ToList(), silos, replicas);
            var added = extra.Select(e =>
            {
                var model = record.Shards.First(s => s.Config.StageIndex == e.Stage);
                return model with { Key = ShardKeys.Format(Model, e.Stage, version, e.SiloId, e.Replica), Replica = e.Replica };
            }).ToList();
            // Removing: the highest replica numbers go first; every stage keeps at least one.
            var removed = replicas is int n
                ? record.Shards.GroupBy(s => s.Config.StageIndex).SelectMany(g => g.OrderBy(s => s.Replica).Skip(n)).ToList()
                : [];
            if (replicas is int wanted && record.Shards.GroupBy(s => s.Config.StageIndex).Any(g => g.Count() + added.Count(a => a.Config.StageIndex == g.Key) < wanted))
                throw new StrataException(ErrorCodes.InvalidRequest,
                    $"{wanted} replicas per stage do not fit: the silos have room for {record.Shards.Count + added.Count} shard(s) in all, each replica on its own silo; add silos or ask for fewer");
            if (added.Count == 0 && removed.Count == 0)
            {
                if (record.Request.Replicas != replicas) await Store(new DeploymentRecord { Request = record.Request with { Replicas = replicas }, Version = version, Shards = record.Shards });
                return await GetStatus();
            }

            // The count asked for is the deployment's from now on (replicas lost later come back to it).
            var request = record.Request with { Replicas = replicas };
            var grown = new DeploymentRecord { Request = request, Version = version, Shards = Sorted(record.Shards.Concat(added)) };
            await Store(grown);
            await Task.WhenAll(added.Select(a => grains.GetGrain<IShardGrain>(a.Key).Configure(a.Config)));
            await WaitForReady(added);
            if (removed.Count > 0)
            {
                await Store(new DeploymentRecord { Request = request, Version = version + 1, Shards = Sorted(grown.Shards.Except(removed)) });
                await MoveSessions(removed);
                await UnloadShards(removed);
            }
            LogScale(logger, Model, Record.Version, added.Count, removed.Count);
        }
        finally
        {
            _changes.Release();
        }
        return await GetStatus();
    }

    /// <summary>
    /// Moves the sessions in a turn on <paramref name="leaving"/> (already out of the stored deployment) one at a
    /// time: each is asked to take a new route before its next step, and the next is asked once the shards no longer
    /// list it (it has replayed on its new route and given back its slots here). The old shards serve every session
    /// until its own move, so a session's stream pauses only for its own replay, not for everyone's at once.
    /// Returns how many moved; a session that does not move within <see cref="MoveTimeout"/> is left to find the
    /// shards gone.
    /// </summary>
    private async Task<int> MoveSessions(IReadOnlyList<ShardRecord> leaving)
    {
        var keys = leaving.Select(s => s.Key).ToArray();
        var shards = keys.Select(k => grains.GetGrain<IShardGrain>(k)).ToArray();
        async Task<HashSet<string>> Running()
        {
            var lists = await Task.WhenAll(shards.Select(async s =>
            {
                try { return await s.RunningSessions().WaitAsync(TimeSpan.FromSeconds(2)); }
                catch (Exception e) when (e is TimeoutException or OrleansException) { return []; }
            }));
            return lists.SelectMany(l => l).ToHashSet(StringComparer.Ordinal);
        }

        int moved = 0;
        foreach (string session in (await Running()).Order(StringComparer.Ordinal))
        {
            bool scheduled;
            try
            {
                scheduled = await grains.GetGrain<ISessionGrain>(session).Move(keys).WaitAsync(TimeSpan.FromSeconds(5));
            }
            catch (Exception e) when (e is TimeoutException or OrleansException or StrataException)
            {
                LogMoveFailed(logger, Model, session, e.Message);
                continue;
            }
            if (!scheduled) continue;
            var deadline = DateTime.UtcNow + MoveTimeout;
            while ((await Running()).Contains(session))
            {
                if (DateTime.UtcNow > deadline)
                {
                    LogMoveFailed(logger, Model, session, $"still on the old shards after {MoveTimeout.TotalSeconds:F0} s");
                    break;
                }
                await Task.Delay(20);
            }
            moved++;
        }
        return moved;
    }

    /// <summary>How long a drain waits for one session to move before going on.</summary>
    private static readonly TimeSpan MoveTimeout = TimeSpan.FromSeconds(15);

    private static List<ShardRecord> Sorted(IEnumerable<ShardRecord> shards) =>
        shards.OrderBy(s => s.Config.StageIndex).ThenBy(s => s.Replica).ToList();

    /// <summary>Places a new shard for each of <paramref name="gone"/> where a silo has room. One per stage left
    /// without a replica in <paramref name="staying"/> is required (placed first; failing when none fits); the
    /// others replace lost replicas where there is room, unless <paramref name="requiredOnly"/>.</summary>
    private List<ShardRecord> Place(IReadOnlyList<ShardRecord> gone, IReadOnlyList<ShardRecord> staying, IReadOnlyList<SiloCapacity> silos, long version,
        bool requiredOnly = false)
    {
        var used = staying.GroupBy(s => ShardKeys.Silo(s.Key)).ToDictionary(g => g.Key, g => g.Sum(s => s.Bytes), StringComparer.Ordinal);
        var added = new List<ShardRecord>();
        foreach (var g in gone.OrderByDescending(g => staying.All(s => s.Config.StageIndex != g.Config.StageIndex)))
        {
            var holders = staying.Concat(added).Where(s => s.Config.StageIndex == g.Config.StageIndex)
                .Select(s => ShardKeys.Silo(s.Key)).ToHashSet(StringComparer.Ordinal);
            bool required = holders.Count == 0;
            if (requiredOnly && !required) continue;
            if (ShardPlacement.Choose(g.Bytes, silos, used, holders) is not string silo)
            {
                if (!required) continue;
                throw new StrataException(ErrorCodes.StageFailed,
                    $"model '{Model}': no other silo has {ByteSize.Format(g.Bytes)} free for stage {g.Config.StageIndex} " +
                    $"(layers [{g.Config.FirstLayer}, {g.Config.EndLayer})); add a silo or deploy again with fewer sessions");
            }
            used[silo] = used.GetValueOrDefault(silo) + g.Bytes;
            added.Add(g with { Key = ShardKeys.Format(Model, g.Config.StageIndex, version, silo, g.Replica) });
        }
        return added;
    }

    /// <summary>Waits until every shard of <paramref name="shards"/> is ready; fails when one fails to load.</summary>
    private async Task WaitForReady(IReadOnlyList<ShardRecord> shards)
    {
        var deadline = DateTime.UtcNow + options.Value.StageLoadTimeout;
        while (shards.Count > 0)
        {
            var probes = await Probe(shards);
            if (probes.All(p => p.Serves)) return;
            if (probes.Select((p, i) => (p, i)).FirstOrDefault(x => !x.p.Serves && x.p.Status.State != DeploymentState.Loading) is { p.Status: not null } bad)
                throw new StrataException(ErrorCodes.StageFailed, $"model '{Model}': shard {shards[bad.i].Key} failed to load: {bad.p.Status.Error}");
            if (DateTime.UtcNow > deadline)
                throw new StrataException(ErrorCodes.StageFailed, $"model '{Model}': new shards still loading after {options.Value.StageLoadTimeout.TotalSeconds:F0} s");
            await Task.Delay(50);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "model {Model}: draining silo {Silo}: plan version {Version}, placed {Added}")]
    private static partial void LogDrain(ILogger logger, string model, string silo, long version, string added);

    [LoggerMessage(Level = LogLevel.Warning, Message = "model {Model}: session {Session} did not move off the leaving shards: {Error}")]
    private static partial void LogMoveFailed(ILogger logger, string model, string session, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "model {Model}: scaled to plan version {Version}: {Added} shard(s) added, {Removed} removed")]
    private static partial void LogScale(ILogger logger, string model, long version, int added, int removed);
}
