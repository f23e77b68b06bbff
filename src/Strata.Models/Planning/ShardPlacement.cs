namespace Strata.Models.Planning;

/// <summary>
/// Places single shards once a plan exists: a replica of a planned stage, or a replacement for a stage whose silo was
/// lost. A pure function of the silos, the bytes already placed on each and the shard's size, so the model grain's
/// decisions can be tested without a cluster.
/// </summary>
public static class ShardPlacement
{
    /// <summary>
    /// The silo that should take a shard of <paramref name="bytes"/>: among the silos not in
    /// <paramref name="excluded"/> whose usable memory (after <see cref="PlanOptions.Headroom"/>) still holds it next
    /// to what <paramref name="usedBytes"/> says is placed there, the one with the most memory left afterwards
    /// (accelerators before CPUs, then the silo id, so equal inputs give equal answers). Null when none fits.
    /// </summary>
    /// <param name="bytes">Weights plus KV of the shard.</param>
    /// <param name="silos">The silos that may take it (active, advertising capacity).</param>
    /// <param name="usedBytes">Bytes already placed on each silo by this deployment.</param>
    /// <param name="excluded">Silos that must not take it: those holding another replica of the same stage, or
    /// found unreachable.</param>
    /// <param name="options">Headroom.</param>
    public static string? Choose(long bytes, IReadOnlyList<SiloCapacity> silos, IReadOnlyDictionary<string, long> usedBytes,
        IReadOnlySet<string> excluded, PlanOptions? options = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        options ??= new PlanOptions();
        return silos
            .Where(s => !excluded.Contains(s.SiloId))
            .Select(s => (Silo: s, Left: options.Usable(s.MemoryBytes) - usedBytes.GetValueOrDefault(s.SiloId) - bytes))
            .Where(c => c.Left >= 0)
            .OrderByDescending(c => c.Left)
            .ThenBy(c => c.Silo.IsCpu)
            .ThenBy(c => c.Silo.SiloId, StringComparer.Ordinal)
            .Select(c => c.Silo.SiloId)
            .FirstOrDefault();
    }

    /// <summary>
    /// Replicas for the stages of <paramref name="plan"/>: up to <paramref name="replicas"/> shards per stage in
    /// total (null = as many as fit), each on a silo that holds no other shard of that stage. Returns the extra shards
    /// as (stage index, replica number, silo id); the plan's own shards are replica 0.
    /// </summary>
    public static IReadOnlyList<(int Stage, int Replica, string SiloId)> Replicas(StagePlan plan, IReadOnlyList<SiloCapacity> silos,
        int? replicas, PlanOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(plan);
        return AddReplicas(plan.Stages.Select(s => new PlacedShard(s.Index, 0, s.SiloId, s.TotalBytes)).ToList(), silos, replicas, options);
    }

    /// <summary>
    /// More shards for stages that already have <paramref name="existing"/> ones, until each stage has
    /// <paramref name="replicas"/> (null = as many as fit). Replicas are added round by round (every stage's second
    /// shard before any third), so spare capacity is shared fairly; each goes on a silo holding no other shard of its
    /// stage, where the most memory is left. New replica numbers continue after the highest of each stage.
    /// </summary>
    public static IReadOnlyList<(int Stage, int Replica, string SiloId)> AddReplicas(IReadOnlyList<PlacedShard> existing,
        IReadOnlyList<SiloCapacity> silos, int? replicas, PlanOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(existing);
        if (replicas is < 1) throw new ArgumentOutOfRangeException(nameof(replicas), replicas, "replicas must be at least 1");
        var used = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var s in existing) used[s.SiloId] = used.GetValueOrDefault(s.SiloId) + s.Bytes;
        var stages = existing.GroupBy(s => s.Stage).OrderBy(g => g.Key).Select(g => new
        {
            Index = g.Key,
            Bytes = g.Max(s => s.Bytes),
            Holders = g.Select(s => s.SiloId).ToHashSet(StringComparer.Ordinal),
            Count = g.Count(),
            NextReplica = g.Max(s => s.Replica) + 1,
        }).ToList();
        var counts = stages.ToDictionary(s => s.Index, s => s.Count);
        var next = stages.ToDictionary(s => s.Index, s => s.NextReplica);

        var extra = new List<(int, int, string)>();
        int limit = replicas ?? silos.Count;
        bool placed = true;
        while (placed)
        {
            placed = false;
            foreach (var stage in stages.OrderBy(s => counts[s.Index]).ThenBy(s => s.Index))
            {
                if (counts[stage.Index] >= limit) continue;
                if (Choose(stage.Bytes, silos, used, stage.Holders, options) is not string silo) continue;
                used[silo] = used.GetValueOrDefault(silo) + stage.Bytes;
                stage.Holders.Add(silo);
                extra.Add((stage.Index, next[stage.Index]++, silo));
                counts[stage.Index]++;
                placed = true;
            }
        }
        return extra;
    }
}

/// <summary>A shard already placed: its stage, replica number, silo and memory (weights plus KV).</summary>
public sealed record PlacedShard(int Stage, int Replica, string SiloId, long Bytes);
